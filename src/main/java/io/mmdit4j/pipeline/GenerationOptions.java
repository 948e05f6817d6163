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
            GenerationOptions::cfg, GenerationOptions::embedded, GenerationOptions::sigmas, GenerationOptions::shift, GenerationOptions::frames,
            GenerationOptions::fps, GenerationOptions::sampleSize));

    private static final java.util.Map<Class<? extends GenerationOption>, String> DESCRIPTIONS = new java.util.concurrent.ConcurrentHashMap<>(java.util.Map.of(
            ClassifierFreeGuidance.class, "classifier-free guidance (--cfg, --negative-prompt)",
            EmbeddedGuidance.class, "embedded guidance (--guidance)",
            CustomSigmas.class, "explicit sigmas (--sigmas)",
            SchedulerShift.class, "scheduler shift (--shift)",
            VideoFrames.class, "video frames (--frames)",
            FrameRate.class, "video frame rate (--fps)",
            SampleSize.class, "area-preserving resize (--sample-size)",
            StepNoise.class, "given per-step sampler noise"));

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
            if (negatives != null && !negatives.isEmpty()) {
                throw new InvalidRequestException(where + ": 'negative_prompt' without 'cfg_scale'");
            }
            return null;
        }
        return wrap(where, () -> new ClassifierFreeGuidance(scale, negatives));
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

    private static GenerationOption fps(JsonNode j, String where) {
        Integer fps = SettingsJson.integer(j, "fps", 1, FrameRate.MAX, where);
        return fps == null ? null : new FrameRate(fps);
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
