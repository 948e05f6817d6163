package io.mmdit4j.text.llama;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A hand-made Llama-3-style {@code tokenizer.json}: byte-level BPE whose 256 byte symbols have id = byte value, five merges,
 * Llama-3's split regex, {@code ignore_merges}, and {@code <|begin_of_text|>} added by a TemplateProcessing post-processor.
 * Special ids are those of the golden tiny Llama (1016..1021), so its ids fit that model's vocabulary of 1024.
 */
public final class TinyLlamaTokenizerJson {
    static final long BOS = 1016, EOT = 1020, START_HEADER = 1018, END_HEADER = 1019, PAD = 1021;
    /** Merged tokens: "Ġc" 256, "at" 257, "Ġcat" 258, "{}" 259, "ĊĊ" 260. */
    static final long G_C = 256, AT = 257, G_CAT = 258, BRACES = 259, NEWLINES = 260;

    private TinyLlamaTokenizerJson() {}

    /** GPT-2's bytes_to_unicode: the printable character standing for each byte. */
    static String byteChar(int b) {
        List<Integer> bs = new ArrayList<>();
        for (int i = '!'; i <= '~'; i++) bs.add(i);
        for (int i = 0xA1; i <= 0xAC; i++) bs.add(i);
        for (int i = 0xAE; i <= 0xFF; i++) bs.add(i);
        if (bs.contains(b)) return String.valueOf((char) b);
        int n = 0;
        for (int i = 0; i < 256; i++) {
            if (bs.contains(i)) continue;
            if (i == b) return String.valueOf((char) (256 + n));
            n++;
        }
        throw new IllegalArgumentException("byte " + b);
    }

    public static Path write(Path dir) throws IOException {
        ObjectMapper m = new ObjectMapper();
        ObjectNode root = m.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        String[] specials = {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<pad>"};
        for (int i = 0; i < specials.length; i++) {
            ObjectNode t = added.addObject();
            t.put("id", 1016 + i).put("content", specials[i]).put("single_word", false).put("lstrip", false).put("rstrip", false)
                    .put("normalized", false).put("special", true);
        }
        root.putNull("normalizer");
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "Sequence");
        ArrayNode pres = pre.putArray("pretokenizers");
        ObjectNode split = pres.addObject();
        split.put("type", "Split");
        split.putObject("pattern").put("Regex",
                "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
        split.put("behavior", "Isolated").put("invert", false);
        pres.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", true).put("use_regex", false);
        ObjectNode post = root.putObject("post_processor");
        post.put("type", "TemplateProcessing");
        ArrayNode single = post.putArray("single");
        single.addObject().putObject("SpecialToken").put("id", "<|begin_of_text|>").put("type_id", 0);
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        ArrayNode pair = post.putArray("pair");
        pair.addObject().putObject("SpecialToken").put("id", "<|begin_of_text|>").put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        pair.addObject().putObject("SpecialToken").put("id", "<|begin_of_text|>").put("type_id", 1);
        pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
        ObjectNode st = post.putObject("special_tokens").putObject("<|begin_of_text|>");
        st.put("id", "<|begin_of_text|>");
        st.putArray("ids").add(BOS);
        st.putArray("tokens").add("<|begin_of_text|>");
        root.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", true).put("trim_offsets", true).put("use_regex", true);
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE").putNull("dropout");
        model.putNull("unk_token").putNull("continuing_subword_prefix").putNull("end_of_word_suffix");
        model.put("fuse_unk", false).put("byte_fallback", false).put("ignore_merges", true);
        ObjectNode vocab = model.putObject("vocab");
        for (int b = 0; b < 256; b++) vocab.put(byteChar(b), b);
        String g = byteChar(' '), nl = byteChar('\n');
        vocab.put(g + "c", G_C).put("at", AT).put(g + "cat", G_CAT).put("{}", BRACES).put(nl + nl, NEWLINES);
        // The special tokens are in the model vocabulary too (as in real files), so the library keeps their ids.
        for (int i = 0; i < specials.length; i++) vocab.put(specials[i], 1016 + i);
        model.putArray("merges").add(g + " c").add("a t").add(g + "c at").add("{ }").add(nl + " " + nl);
        Path file = dir.resolve("tokenizer.json");
        Files.createDirectories(dir);
        Files.writeString(file, m.writerWithDefaultPrettyPrinter().writeValueAsString(root));
        return file;
    }
}
