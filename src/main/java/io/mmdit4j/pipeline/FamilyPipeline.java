package io.mmdit4j.pipeline;

import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.ModulationVisitor;
import io.mmdit4j.lora.LoraAdapter;
import io.mmdit4j.lora.LoraReport;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.sampling.Denoiser;
import io.mmdit4j.sampling.Sampler;
import io.mmdit4j.sampling.Schedule;
import org.bytedeco.pytorch.Tensor;

import java.util.Set;

/**
 * What a family's loaded models give the shared generation skeleton ({@link Pipeline#generate}): the steps of its
 * diffusers pipeline, each on resolved {@link GenerationSettings}. The skeleton owns the order, the guidance plan, the
 * denoising loop, timings, cancellation and the release of everything on failure; a family writes only what differs.
 *
 * @param <C> the family's text conditioning of one request (embeddings, masks, the CFG batch), released by the skeleton
 */
public interface FamilyPipeline<C extends AutoCloseable> extends AutoCloseable {
    /** Blocks counted with the global guidance counter (FLUX: double then single blocks). */
    int numGuidedBlocks();

    DType dtype();

    DeviceSpec device();

    /** The option types this loaded model takes (e.g. embedded guidance only for a guidance-distilled FLUX). */
    Set<Class<? extends GenerationOption>> supportedOptions();

    /** Family rules on resolved settings (e.g. HunyuanVideo's 4k+1 frames), checked before any work. */
    default void validate(GenerationSettings s) {}

    /** Whether the transformer batch is the CFG pair {@code [negative; positive]} (2·images rows). */
    default boolean cfg(GenerationSettings s) {
        ClassifierFreeGuidance c = s.option(ClassifierFreeGuidance.class);
        return c != null && c.active();
    }

    /** HiDream-style: the final norm always receives the guided vector ({@link ModulationGuidance.Builder#guideFinalNorm}). */
    default boolean guideFinalNorm() {
        return false;
    }

    /** The text conditioning of the request's prompts (and negative prompts), owned by the caller. */
    C encode(GenerationSettings s);

    /** A guidance direction {@code TextMLP(pooled(pos)) − TextMLP(pooled(neg))}, {@code [1, D]}, owned by the caller. */
    Tensor delta(String pos, String neg);

    /** The sampler's sigmas and timesteps for the request (errors for bad sigma lists come from here, before any work). */
    Schedule schedule(GenerationSettings s);

    /**
     * The update rule the denoising loop applies to {@link #velocity}'s predictions over {@code schedule}, one instance per
     * request, closed after the loop: by default the schedule's own flow-matching Euler step on a velocity; a family with
     * another sampler returns its rule here (COSMOS: {@link io.mmdit4j.sampling.DenoisedEulerSampler} on a denoised
     * prediction; HiDream: {@link io.mmdit4j.sampling.FlowMatchLcmScheduler} with fresh seeded noise every step or
     * {@link io.mmdit4j.sampling.UniPcMultistepScheduler}'s multistep history).
     */
    default Sampler sampler(GenerationSettings s, Schedule schedule) {
        return schedule;
    }

    /** The initial latents: the request's initial noise, else seeded noise per image. Owned by the caller. */
    Tensor noise(GenerationSettings s);

    /**
     * The model's prediction at each step of {@code schedule} (forward, CFG combination) in the form {@link #sampler} steps
     * with, with its per-request state; closed after the loop.
     */
    Velocity velocity(GenerationSettings s, Schedule schedule, C conditioning, ModulationGuidance guidance, ConditioningObserver observer);

    /** Final latents → images {@code [N, 3, H, W]} or frames {@code [N, F, 3, H, W]} in [0, 1], fp32 on the CPU. Owned by the caller. */
    Tensor decode(Tensor latents, GenerationSettings s);

    /**
     * The adaLN modulation vectors of the forward whose conditioning is {@code cond} (modulation statistics); families
     * without them keep this refusal.
     */
    default void modulations(BlockConditioning cond, ModulationVisitor visitor) {
        throw new UnsupportedOptionException("modulation statistics are not available for this model family yet (run without them)");
    }

    /** Merges a LoRA into the transformer; families without LoRA support keep this refusal. */
    default LoraReport applyLora(LoraAdapter lora, double scale, boolean strict) {
        throw new UnsupportedOptionException("LoRA (--lora): not supported for this model family");
    }

    /** A {@link Denoiser.Velocity} that holds per-request state (RoPE tables, guidance arguments). */
    interface Velocity extends Denoiser.Velocity, AutoCloseable {
        @Override
        void close();
    }

    @Override
    void close();
}
