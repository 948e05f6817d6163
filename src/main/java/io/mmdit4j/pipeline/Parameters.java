package io.mmdit4j.pipeline;

import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.NormControl;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.lora.LoraSpec;

import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The generation parameters as AUTOMATIC1111's web UI writes them into a PNG's {@code parameters} text chunk, the text
 * that A1111, Forge, ComfyUI's and Civitai's readers (and most image viewers' "generation data" panels) show and parse:
 * <pre>
 * a lighthouse at dusk
 * Negative prompt: blurry
 * Steps: 4, Sampler: Euler, CFG scale: 4.5, Seed: 42, Size: 1024x1024, Model: flux1-schnell, MG w: 3, MG layers: 5-, ...
 * </pre>
 * The prompt lines, an optional {@code Negative prompt:} line, then one line of {@code key: value} pairs separated by
 * {@code ", "}; a value holding a comma, a colon or a line break is quoted as a JSON string (A1111's {@code quote}), so the
 * last line stays one line and the reader's pattern {@code \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)} splits
 * it exactly. Keys are A1111's where it has one ({@code Denoising strength}, Forge's {@code Distilled CFG Scale} for
 * embedded guidance) and ours for the rest ({@code MG ...} for each modulation-guidance direction, {@code Scales}). It is
 * for other tools: {@code generate --from} reads the full {@code mmdit4j} JSON record instead.
 */
public final class Parameters {
    private Parameters() {}

    /** The {@code parameters} text of one image's settings ({@link GenerationSettings#forImage}). */
    public static String of(GenerationSettings s) {
        StringBuilder b = new StringBuilder(s.prompt(0));
        NegativePrompts cfg = s.negativePrompts();
        if (cfg != null && cfg.active()) {
            String neg = cfg.negatives(s.prompts().size()).get(0);
            if (!neg.isEmpty()) b.append("\nNegative prompt: ").append(neg);
        }
        b.append('\n');
        List<String> pairs = new ArrayList<>();
        fields(s).forEach((k, v) -> pairs.add(k + ": " + quote(v)));
        return b.append(String.join(", ", pairs)).toString();
    }

    /** The key–value pairs of the last line, in order, unquoted. */
    public static Map<String, String> fields(GenerationSettings s) {
        Map<String, String> f = new LinkedHashMap<>();
        f.put("Steps", Integer.toString(s.steps()));
        f.put("Sampler", s.option(ScaleWise.class) != null ? "SwD" : sampler(s.sampler()));
        NegativePrompts cfg = s.negativePrompts(); // FLUX's true CFG too: Forge's "CFG scale" with its distilled one
        if (cfg != null) f.put("CFG scale", number(cfg.scale()));
        EmbeddedGuidance eg = s.option(EmbeddedGuidance.class);
        if (eg != null) f.put("Distilled CFG Scale", number(eg.scale()));
        f.put("Seed", SettingsJson.seedText(s.seed(0)));
        SampleSize sample = s.option(SampleSize.class); // HiDream: the image has the resized size
        int[] size = sample == null ? new int[] {s.width(), s.height()} : sample.resize(s.width(), s.height());
        f.put("Size", size[0] + "x" + size[1]);
        f.put("Model", modelName(s.model()));
        InitImage init = s.option(InitImage.class);
        if (init != null) f.put("Denoising strength", number(init.strength()));
        if (s.option(InpaintMask.class) != null) f.put("Inpaint", "mask");
        ScaleWise swd = s.option(ScaleWise.class);
        if (swd != null) {
            f.put("Scales", swd.isFixed() ? "fixed" : join(swd.scales()));
            if (swd.halfNoise()) f.put("Scales noise", "float16");
        }
        CustomSigmas sigmas = s.option(CustomSigmas.class);
        if (sigmas != null) f.put("Sigmas", join(sigmas.sigmas()) + (sigmas.shifted() ? " shifted" : ""));
        SchedulerShift shift = s.option(SchedulerShift.class);
        if (shift != null) f.put("Shift", number(shift.shift()));
        if (sample != null) f.put("Sample size", Integer.toString(sample.pixels()));
        VideoFrames frames = s.option(VideoFrames.class);
        if (frames != null) f.put("Frames", Integer.toString(frames.frames()));
        FrameRate fps = s.option(FrameRate.class);
        if (fps != null) f.put("FPS", Integer.toString(fps.fps()));
        if (!s.loras().isEmpty()) {
            List<String> l = new ArrayList<>();
            for (LoraSpec spec : s.loras()) l.add(modelName(spec.file().toString()) + ":" + number(spec.scale()));
            f.put("LoRA", String.join(", ", l));
        }
        List<Direction> dirs = s.guidance();
        for (int k = 0; k < dirs.size(); k++) {
            Direction d = dirs.get(k);
            String p = k == 0 ? "MG" : "MG" + (k + 1);
            f.put(p + " direction", d.name());
            f.put(p + " w", number(d.w()));
            f.put(p + " layers", d.layers().toString());
            if (!d.steps().equals(StepWindow.all())) f.put(p + " steps", d.steps().toString());
            if (d.rows() != CfgRows.BOTH) f.put(p + " rows", d.rows().toString());
            f.put(p + " pos", d.pos());
            f.put(p + " neg", d.neg());
        }
        if (s.normControl() != NormControl.NONE) f.put("MG norm", s.normControl().text());
        f.put("Version", "mmdit4j");
        return f;
    }

    /** A1111's {@code quote}: as is unless it holds a comma, a colon or a line break, else a JSON string. */
    static String quote(String v) {
        if (v.indexOf(',') < 0 && v.indexOf(':') < 0 && v.indexOf('\n') < 0 && v.indexOf('\r') < 0) return v;
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < v.length(); i++) {
            char c = v.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) b.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    else b.append(c);
                }
            }
        }
        return b.append('"').toString();
    }

    /** Our sampler names as the web UIs call them. */
    private static String sampler(String name) {
        return switch (name == null ? "" : name) {
            case "flow_match_euler" -> "Euler";
            case "karras_x0_euler" -> "Euler Karras";
            case "scheduler_config" -> "Model's scheduler"; // HiDream: UniPC (Full) or FlowMatchLCM (Fast, Dev), as the folder says
            default -> name;
        };
    }

    /** A descriptor name as it is, a path by its last element (a folder or checkpoint name, as the web UIs show models). */
    static String modelName(String model) {
        if (model == null) return "";
        if (model.indexOf('/') < 0 && model.indexOf('\\') < 0) return model;
        try {
            Path p = Path.of(model).getFileName();
            return p == null ? model : p.toString();
        } catch (InvalidPathException e) {
            return model;
        }
    }

    private static String number(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v);
    }

    private static String join(int[] v) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < v.length; i++) b.append(i == 0 ? "" : ",").append(v[i]);
        return b.toString();
    }

    private static String join(double[] v) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < v.length; i++) b.append(i == 0 ? "" : ",").append(v[i]);
        return b.toString();
    }
}
