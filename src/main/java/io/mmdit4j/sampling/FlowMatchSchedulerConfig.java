package io.mmdit4j.sampling;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/**
 * The options of diffusers' {@code FlowMatchEulerDiscreteScheduler} ({@code scheduler/scheduler_config.json})
 * that this implementation supports. Options it does not implement (Karras / exponential / beta sigmas,
 * {@code invert_sigmas}, {@code shift_terminal}, {@code stochastic_sampling}, an unknown {@code time_shift_type})
 * are rejected when set, never silently ignored.
 *
 * @param numTrainTimesteps  {@code num_train_timesteps} (1000 for every released model)
 * @param shift              static shift {@code σ' = shift·σ / (1 + (shift−1)·σ)}, used when dynamic shifting is off
 * @param useDynamicShifting resolution-dependent shift with {@code mu = calculate_shift(image_seq_len)} (FLUX.1-dev)
 * @param baseShift          {@code mu} at {@code baseImageSeqLen} tokens
 * @param maxShift           {@code mu} at {@code maxImageSeqLen} tokens
 * @param timeShiftType      how {@code mu} shifts the sigmas when dynamic shifting is on
 */
public record FlowMatchSchedulerConfig(int numTrainTimesteps, double shift, boolean useDynamicShifting, double baseShift,
                                       double maxShift, int baseImageSeqLen, int maxImageSeqLen, TimeShiftType timeShiftType) {

    /** diffusers' {@code time_shift_type}. */
    public enum TimeShiftType {
        /** {@code e^mu / (e^mu + (1/σ − 1))} (the default, FLUX). */
        EXPONENTIAL,
        /** {@code mu / (mu + (1/σ − 1))}. */
        LINEAR
    }

    public static final String CLASS_NAME = "FlowMatchEulerDiscreteScheduler";
    /** diffusers' {@code FlowMatchLCMScheduler} (HiDream-I1 Fast / Dev): the same config, a stochastic step ({@link FlowMatchLcmScheduler}). */
    public static final String LCM_CLASS_NAME = "FlowMatchLCMScheduler";

    /** Keys this class reads. */
    private static final Set<String> READ = Set.of("num_train_timesteps", "shift", "use_dynamic_shifting", "base_shift",
            "max_shift", "base_image_seq_len", "max_image_seq_len", "time_shift_type");
    /** Options that change the schedule and are not implemented: allowed only when null or false. */
    private static final Set<String> UNSUPPORTED = Set.of("invert_sigmas", "shift_terminal", "use_karras_sigmas",
            "use_exponential_sigmas", "use_beta_sigmas", "stochastic_sampling", "scale_factors");
    /** {@code FlowMatchLCMScheduler}'s interpolation mode: used only with {@code scale_factors} (refused above). */
    private static final Set<String> LCM_IGNORED = Set.of("upscale_mode");

    public FlowMatchSchedulerConfig {
        if (numTrainTimesteps < 1) throw new IllegalArgumentException("num_train_timesteps must be >= 1, got " + numTrainTimesteps);
        if (!(shift > 0) || !Double.isFinite(shift)) throw new IllegalArgumentException("shift must be a finite number > 0, got " + shift);
        if (!Double.isFinite(baseShift) || !Double.isFinite(maxShift)) {
            throw new IllegalArgumentException("base_shift and max_shift must be finite, got " + baseShift + " and " + maxShift);
        }
        if (timeShiftType == null) throw new IllegalArgumentException("time_shift_type is required");
        if (useDynamicShifting && baseImageSeqLen == maxImageSeqLen) {
            throw new IllegalArgumentException("dynamic shifting needs base_image_seq_len != max_image_seq_len (both " + baseImageSeqLen + ")");
        }
    }

    /** FLUX.1-schnell's shipped config: shift 1.0, no dynamic shifting (the schedule is the plain linspace). */
    public static FlowMatchSchedulerConfig fluxSchnell() {
        return new FlowMatchSchedulerConfig(1000, 1.0, false, 0.5, 1.15, 256, 4096, TimeShiftType.EXPONENTIAL);
    }

    /** FLUX.1-dev's shipped config: dynamic (exponential) shifting, mu from 0.5 at 256 to 1.15 at 4096 tokens; shift 3.0 unused. */
    public static FlowMatchSchedulerConfig fluxDev() {
        return new FlowMatchSchedulerConfig(1000, 3.0, true, 0.5, 1.15, 256, 4096, TimeShiftType.EXPONENTIAL);
    }

    /** SD3 / SD3.5's shipped config: static shift 3.0 ({@code {"num_train_timesteps": 1000, "shift": 3.0}}). */
    public static FlowMatchSchedulerConfig sd3() {
        return new FlowMatchSchedulerConfig(1000, 3.0, false, 0.5, 1.15, 256, 4096, TimeShiftType.EXPONENTIAL);
    }

    /** The same config with another static shift (diffusers' {@code from_config(..., shift=s)}). */
    public FlowMatchSchedulerConfig withShift(double newShift) {
        return new FlowMatchSchedulerConfig(numTrainTimesteps, newShift, useDynamicShifting, baseShift, maxShift, baseImageSeqLen,
                maxImageSeqLen, timeShiftType);
    }

    /** {@code calculate_shift(image_seq_len)} with this config's line (as the FLUX and SD3 pipelines call it). */
    public double mu(int imageSeqLen) {
        return FlowMatchEulerScheduler.calculateShift(imageSeqLen, baseImageSeqLen, maxImageSeqLen, baseShift, maxShift);
    }

    /**
     * Reads {@code scheduler_config.json}; {@code path} may be the file, a {@code scheduler/} folder or a model
     * folder that contains {@code scheduler/}.
     */
    public static FlowMatchSchedulerConfig fromFile(Path path) {
        Path file = configFile(path);
        return fromJson(JsonConfigs.readObject(file, "scheduler config"), file.toString());
    }

    /** {@code scheduler_config.json} of {@code path}: the file itself, a {@code scheduler/} folder's, or a model folder's {@code scheduler/}. */
    static Path configFile(Path path) {
        if (!Files.isDirectory(path)) return path;
        Path direct = path.resolve("scheduler_config.json");
        return Files.isRegularFile(direct) ? direct : path.resolve("scheduler").resolve("scheduler_config.json");
    }

    /** Reads a diffusers scheduler config object; {@code origin} names it in error messages. */
    public static FlowMatchSchedulerConfig fromJson(JsonNode c, String origin) {
        if (c == null || !c.isObject()) throw new ModelFormatException(origin + ": scheduler config must be a JSON object");
        String cls = c.path("_class_name").asText("");
        if (!cls.isEmpty() && !cls.equals(CLASS_NAME) && !cls.equals(LCM_CLASS_NAME)) {
            throw new ModelFormatException(origin + ": _class_name is '" + cls + "', only " + CLASS_NAME + " and " + LCM_CLASS_NAME + " are supported");
        }
        JsonConfigs.rejectUnread(c, origin, READ, cls.equals(LCM_CLASS_NAME) ? LCM_IGNORED : Set.of(), UNSUPPORTED,
                " (only the plain, static-shift or dynamic-shift FlowMatchEulerDiscreteScheduler is)");
        String type = c.hasNonNull("time_shift_type") ? c.get("time_shift_type").asText() : "exponential";
        TimeShiftType timeShift;
        switch (type.toLowerCase(Locale.ROOT)) {
            case "exponential": timeShift = TimeShiftType.EXPONENTIAL; break;
            case "linear": timeShift = TimeShiftType.LINEAR; break;
            default: throw new ModelFormatException(origin + ": time_shift_type '" + type + "' is not supported (exponential or linear)");
        }
        try {
            return new FlowMatchSchedulerConfig(JsonConfigs.intOr(c, origin, "num_train_timesteps", 1000), JsonConfigs.doubleOr(c, origin, "shift", 1.0),
                    JsonConfigs.boolOr(c, origin, "use_dynamic_shifting", false), JsonConfigs.doubleOr(c, origin, "base_shift", 0.5),
                    JsonConfigs.doubleOr(c, origin, "max_shift", 1.15), JsonConfigs.intOr(c, origin, "base_image_seq_len", 256),
                    JsonConfigs.intOr(c, origin, "max_image_seq_len", 4096), timeShift);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(origin + ": " + e.getMessage(), e);
        }
    }

}
