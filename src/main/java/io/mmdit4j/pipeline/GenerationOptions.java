package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Reads {@link GenerationOption}s back from settings JSON (a recorded image, a model descriptor's {@code defaults}, a
 * server request): each option type has one reader, and a family that brings a new option type registers its reader
 * once. The keys are those the options {@link GenerationOption#write write}.
 */
public final class GenerationOptions {
    private GenerationOptions() {}

    /** The option recorded in {@code settings}, or null when its keys are absent. */
    @FunctionalInterface
    public interface Reader {
        GenerationOption read(JsonNode settings, String where);
    }

    private static final List<Reader> READERS = new CopyOnWriteArrayList<>(List.of(
            GenerationOptions::cfg, GenerationOptions::trueCfg, GenerationOptions::embedded, GenerationOptions::sigmas, GenerationOptions::shift, GenerationOptions::frames,
            GenerationOptions::fps, GenerationOptions::initImage, GenerationOptions::mask, GenerationOptions::scales,
            GenerationOptions::sampleSize, GenerationOptions::pooledAdapter));

    private static final java.util.Map<Class<? extends GenerationOption>, String> DESCRIPTIONS = new java.util.concurrent.ConcurrentHashMap<>(java.util.Map.ofEntries(
            java.util.Map.entry(ClassifierFreeGuidance.class, "classifier-free guidance (--cfg, --negative-prompt)"),
            java.util.Map.entry(EmbeddedGuidance.class, "embedded guidance (--guidance)"),
            java.util.Map.entry(TrueCfg.class, "true classifier-free guidance (--true-cfg, --negative-prompt)"),
            java.util.Map.entry(CustomSigmas.class, "explicit sigmas (--sigmas)"),
            java.util.Map.entry(SchedulerShift.class, "scheduler shift (--shift)"),
            java.util.Map.entry(VideoFrames.class, "video frames (--frames)"),
            java.util.Map.entry(FrameRate.class, "video frame rate (--fps)"),
            java.util.Map.entry(InitImage.class, "image-to-image (--init-image, --strength)"),
            java.util.Map.entry(InpaintMask.class, "inpainting (--mask)"),
            java.util.Map.entry(ScaleWise.class, "scale-wise sampling (--scales)"),
            java.util.Map.entry(SampleSize.class, "area-preserving resize (--sample-size)"),
            java.util.Map.entry(PooledAdapterFile.class, "the pooled-CLIP adapter (--adapter)"),
            java.util.Map.entry(StepNoise.class, "given per-step sampler noise"),
            java.util.Map.entry(GivenDraws.class, "given random draws")));

    /** What an option type is called in messages. */
    public static String describe(Class<? extends GenerationOption> type) {
        return DESCRIPTIONS.getOrDefault(type, type.getSimpleName());
    }

    /** Adds the reader of a new option type, and what it is called in messages. */
    public static void register(Class<? extends GenerationOption> type, String description, Reader reader) {
        DESCRIPTIONS.put(type, description);
        READERS.add(reader);
    }


    /** Every option recorded in {@code settings}. */
    public static List<GenerationOption> read(JsonNode settings, String where) {
        List<GenerationOption> out = new ArrayList<>();
        for (Reader r : READERS) {
            GenerationOption o = r.read(settings, where);
            if (o != null) out.add(o);
        }
        return out;
    }

    private static GenerationOption cfg(JsonNode j, String where) {
        Double given = SettingsJson.number(j, "cfg_scale", where);
        // images written before cfg_scale existed (SD3): "guidance_scale" was the CFG scale, marked by a boolean "cfg"
        Double scale = given == null && j.path("cfg").isBoolean() ? SettingsJson.number(j, "guidance_scale", where) : given;
        List<String> negatives = SettingsJson.texts(j, "negative_prompt", where);
        if (scale == null) {
            if (negatives != null && !negatives.isEmpty() && !j.has("true_cfg_scale")) {
                throw new InvalidRequestException(where + ": 'negative_prompt' without 'cfg_scale' (or 'true_cfg_scale')");
            }
            return null;
        }
        return wrap(where, () -> new ClassifierFreeGuidance(scale, negatives));
    }

    private static GenerationOption trueCfg(JsonNode j, String where) {
        Double scale = SettingsJson.number(j, "true_cfg_scale", where);
        if (scale == null) return null;
        if (j.has("cfg_scale")) throw new InvalidRequestException(where + ": 'cfg_scale' and 'true_cfg_scale': give one");
        List<String> negatives = SettingsJson.texts(j, "negative_prompt", where);
        return wrap(where, () -> new TrueCfg(scale, negatives));
    }

    private static GenerationOption embedded(JsonNode j, String where) {
        if (j.path("cfg").isBoolean() && !j.has("cfg_scale")) return null; // the legacy SD3 meaning, read above
        Double scale = SettingsJson.number(j, "guidance_scale", where);
        return scale == null ? null : wrap(where, () -> new EmbeddedGuidance(scale));
    }

    private static GenerationOption sigmas(JsonNode j, String where) {
        double[] s = SettingsJson.numbers(j, "sigmas", where);
        Boolean shifted = SettingsJson.bool(j, "sigmas_shifted", where);
        return s == null ? null : wrap(where, () -> new CustomSigmas(s, shifted != null && shifted));
    }

    private static GenerationOption shift(JsonNode j, String where) {
        Double s = SettingsJson.number(j, "shift", where);
        return s == null ? null : wrap(where, () -> new SchedulerShift(s));
    }

    private static GenerationOption frames(JsonNode j, String where) {
        Integer frames = SettingsJson.integer(j, "frames", 1, VideoFrames.MAX, where);
        return frames == null ? null : new VideoFrames(frames);
    }

    private static GenerationOption pooledAdapter(JsonNode j, String where) {
        String file = SettingsJson.text(j, "pooled_adapter", where);
        return file == null ? null : wrap(where, () -> new PooledAdapterFile(java.nio.file.Path.of(file)));
    }

    private static GenerationOption fps(JsonNode j, String where) {
        Integer fps = SettingsJson.integer(j, "fps", 1, FrameRate.MAX, where);
        return fps == null ? null : new FrameRate(fps);
    }

    private static GenerationOption initImage(JsonNode j, String where) {
        List<String> paths = SettingsJson.texts(j, "init_image", where);
        Double strength = SettingsJson.number(j, "strength", where);
        List<String> digests = SettingsJson.texts(j, "init_image_sha256", where);
        if (paths == null) {
            if (strength != null || digests != null) throw new InvalidRequestException(where + ": 'strength' / 'init_image_sha256' without 'init_image'");
            return null;
        }
        if (strength == null) throw new InvalidRequestException(where + ": 'init_image' without 'strength'");
        List<java.nio.file.Path> files = paths.stream().map(java.nio.file.Path::of).toList();
        return wrap(where, () -> digests == null ? InitImage.of(files, strength) : new InitImage(files, strength, digests));
    }

    private static GenerationOption mask(JsonNode j, String where) {
        List<String> paths = SettingsJson.texts(j, "mask", where);
        List<String> digests = SettingsJson.texts(j, "mask_sha256", where);
        if (paths == null) {
            if (digests != null) throw new InvalidRequestException(where + ": 'mask_sha256' without 'mask'");
            return null;
        }
        List<java.nio.file.Path> files = paths.stream().map(java.nio.file.Path::of).toList();
        return wrap(where, () -> digests == null ? InpaintMask.of(files) : new InpaintMask(files, digests));
    }

    private static GenerationOption scales(JsonNode j, String where) {
        JsonNode n = j.get("scales");
        String noise = SettingsJson.text(j, "scales_noise", where);
        if (noise != null && !noise.equals("float16")) throw SettingsJson.bad(where, "scales_noise", "\"float16\" (or absent: float32)", j.get("scales_noise"));
        if (n == null || n.isNull()) {
            if (noise != null) throw new InvalidRequestException(where + ": 'scales_noise' without 'scales'");
            return null;
        }
        boolean half = noise != null;
        if (n.isTextual() && n.asText().equals("fixed")) return ScaleWise.fixed().withHalfNoise(half);
        if (!n.isArray()) throw SettingsJson.bad(where, "scales", "\"fixed\" or a list of latent sides", n);
        int[] scales = new int[n.size()];
        for (int i = 0; i < scales.length; i++) {
            if (!n.get(i).isIntegralNumber() || !n.get(i).canConvertToInt()) throw SettingsJson.bad(where, "scales", "a list of whole numbers", n);
            scales[i] = n.get(i).asInt();
        }
        return wrap(where, () -> new ScaleWise(scales, half));
    }

    private static GenerationOption sampleSize(JsonNode j, String where) {
        Integer px = SettingsJson.integer(j, "sample_size", 16, SampleSize.MAX, where);
        return px == null ? null : new SampleSize(px);
    }

    private static GenerationOption wrap(String where, java.util.function.Supplier<GenerationOption> make) {
        try {
            return make.get();
        } catch (InvalidRequestException e) {
            throw e;
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(where + ": " + e.getMessage(), e);
        }
    }
}
