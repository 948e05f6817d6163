package io.mmdit4j.image;

import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * AUTOMATIC1111's reader of the {@code parameters} text ({@code parse_generation_parameters} of its
 * {@code modules/infotext_utils.py}) in Java, for tests: the last line is the parameters when the pattern finds at least
 * three {@code key: value} pairs in it; the lines before are the prompt, up to a line starting {@code Negative prompt:};
 * a value in double quotes is a JSON string. And ComfyUI's loader's rule: a text chunk named {@code prompt} (or
 * {@code workflow}) is {@code JSON.parse}d.
 */
public final class A1111Infotext {
    private A1111Infotext() {}

    /** A1111's {@code re_param_code}. */
    public static final Pattern PARAM = Pattern.compile("\\s*(\\w[\\w \\-/]+):\\s*(\"(?:\\\\.|[^\\\\\"])+\"|[^,]*)(?:,|$)");
    private static final ObjectMapper JSON = new ObjectMapper();

    /** {@code Prompt}, {@code Negative prompt} and every key of the last line, as A1111 reads them. */
    public static Map<String, String> parse(String text) {
        Map<String, String> res = new LinkedHashMap<>();
        String[] all = text.strip().split("\n", -1);
        List<String> lines = new ArrayList<>(Arrays.asList(all).subList(0, all.length - 1));
        String last = all[all.length - 1];
        if (count(last) < 3) {
            lines.add(last);
            last = "";
        }
        StringBuilder prompt = new StringBuilder(), negative = new StringBuilder();
        boolean doneWithPrompt = false;
        for (String line : lines) {
            line = line.strip();
            if (line.startsWith("Negative prompt:")) {
                doneWithPrompt = true;
                line = line.substring(16).strip();
            }
            StringBuilder b = doneWithPrompt ? negative : prompt;
            b.append(b.length() == 0 ? "" : "\n").append(line);
        }
        res.put("Prompt", prompt.toString());
        res.put("Negative prompt", negative.toString());
        Matcher m = PARAM.matcher(last);
        while (m.find()) {
            String k = m.group(1), v = m.group(2);
            if (v.length() >= 2 && v.startsWith("\"") && v.endsWith("\"")) {
                try {
                    v = JSON.readValue(v, String.class);
                } catch (IOException e) {
                    throw new UncheckedIOException("A1111 would fail to unquote " + v, e);
                }
            }
            res.put(k, v);
        }
        return res;
    }

    private static int count(String line) {
        int n = 0;
        Matcher m = PARAM.matcher(line);
        while (m.find()) n++;
        return n;
    }

    /** ComfyUI's rule for a PNG's text chunks: {@code prompt} and {@code workflow} must be JSON if present. */
    public static void requireComfyCompatible(Map<String, String> chunks) {
        for (String key : List.of("prompt", "workflow")) {
            String v = chunks.get(key);
            if (v == null) continue;
            try {
                JSON.readTree(v);
            } catch (IOException e) {
                throw new AssertionError("ComfyUI's loader runs JSON.parse on the '" + key + "' chunk and would throw: " + e.getMessage());
            }
        }
    }
}
