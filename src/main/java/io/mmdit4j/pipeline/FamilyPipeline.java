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

    /**
     * Resolved settings with what the loaded model adds to every record (COSMOS: the adapter file it was loaded with), so
     * that a replay loads the same model. The default adds nothing.
     */
    default GenerationSettings complete(GenerationSettings s) {
        return s;
    }

    /** Whether the transformer batch is the CFG pair {@code [negative; positive]} (2·images rows): CFG or FLUX's true CFG on. */
    default boolean cfg(GenerationSettings s) {
        NegativePrompts c = s.negativePrompts();
        return c != null && c.active();
    }

    /** HiDream-style: the final norm always receives the guided vector ({@link ModulationGuidance.Builder#guideFinalNorm}). */
    default boolean guideFinalNorm() {
        return false;
    }

    /** The text conditioning of the request's prompts (and negative prompts), owned by the caller. */
    C encode(GenerationSettings s);

    /**
     * Called once a request's prompts and guidance directions are encoded: a family whose text encoders are offloaded
     * ({@code --offload text}) releases them here (their weights' memory goes back; the next request loads them again).
     */
    default void textEncodersDone() {}

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
     * The family's latents as image-to-image and inpainting see them (shape, VAE, packing), or null when it has no image
     * encoder (then it must not list {@link InitImage} among its {@link #supportedOptions}).
     */
    default LatentSpace latentSpace() {
        return null;
    }

    /**
     * The model's prediction at each step of {@code schedule} (forward, CFG combination) in the form {@link #sampler} steps
     * with, with its per-request state; closed after the loop.
     */
    Velocity velocity(GenerationSettings s, Schedule schedule, C conditioning, ModulationGuidance guidance, ConditioningObserver observer);

    /**
     * A cheap RGB preview of latents in the sampler's layout, {@code [B, 3, h, w]} in [0, 1] on the CPU
     * ({@link io.mmdit4j.sampling.StepListener.Step#preview}), or null: families without a latent-to-RGB map.
     */
    default Tensor preview(Tensor latents, GenerationSettings s) {
        return null;
    }

    /** Final latents → images {@code [N, 3, H, W]} or frames {@code [N, F, 3, H, W]} in [0, 1], fp32 on the CPU. Owned by the caller. */
    Tensor decode(Tensor latents, GenerationSettings s);

    /**
     * The adaLN modulation vectors of the forward whose conditioning is {@code cond} (modulation statistics); families
     * without them keep this refusal.
     */
    default void modulations(BlockConditioning cond, ModulationVisitor visitor) {
        throw new UnsupportedOptionException("modulation statistics are not available for this model family yet (run without them)");
    }

    /**
     * Runs each denoising step's forward as a recorded graph through {@code capture} ({@link io.mmdit4j.runtime.StepGraph}:
     * CUDA graphs, {@code --cuda-graphs}; null: eager again). Families whose step is not graph-safe yet keep this refusal.
     */
    default void useStepGraphs(io.mmdit4j.runtime.StepGraph.Capture capture) {
        if (capture != null) {
            throw new UnsupportedOptionException("CUDA graphs (--cuda-graphs): only FLUX's denoising step is graph-safe so far");
        }
    }

    /** Merges a LoRA into the transformer; families without LoRA support keep this refusal. */
    default LoraReport applyLora(LoraAdapter lora, double scale, boolean strict) {
        throw new UnsupportedOptionException("LoRA (--lora): not supported for this model family");
    }

    // ---------------------------------------------------------------- row stepping (continuous batching, RowStepper)

    /**
     * Row stepping ({@link RowStepper}): one transformer forward over the images of several requests, each at its own step of
     * its own schedule; null (the default) when this family runs requests only whole ({@link Pipeline#generate}), e.g.
     * because its sampler keeps state across the batch.
     */
    default RowForward<C> rowForward() {
        return null;
    }

    /**
     * What {@link #encode} of a one-image request depends on (e.g. its prompt, negative prompt and text length): the key of
     * row stepping's prompt-embedding cache; null (the default) encodes every request afresh.
     */
    default Object encodingKey(GenerationSettings oneImage) {
        return null;
    }

    /**
     * Latents in this family's layout → {@code [B, C, h, w]} on the latents' device (FLUX unpacks its tokens), for cheap
     * previews; null when the family has no such view. Owned by the caller.
     */
    default Tensor spatialLatents(Tensor latents, GenerationSettings s) {
        return latents.dim() == 4 ? io.mmdit4j.runtime.Native.keep(latents) : null;
    }

    /**
     * One part of a row-stepping forward: a request's images ({@code settings}), at step {@code step} of {@code schedule}, with
     * their conditioning (borrowed), their guidance plan (its windows are resolved by the forward at {@code step}) and their
     * current latents (borrowed).
     */
    record RowPart<C>(GenerationSettings settings, C conditioning, Schedule schedule, ModulationGuidance guidance, int step, Tensor latents) {}

    /** A forward over the rows of several requests at different steps; holds what it caches across steps (RoPE tables). */
    interface RowForward<C> extends AutoCloseable {
        /**
         * Requests with equal keys can share a forward: their latents and text have the same shapes (by default: the
         * same size and text length). Seeds, prompts, steps, option values and guidance may differ.
         */
        default Object batchKey(GenerationSettings s) {
            return java.util.List.of(s.width(), s.height(), s.maxSequenceLength());
        }

        /**
         * The prediction of every part, in {@link #sampler}'s form: what {@link #velocity}{@code (...).at(latents, step)} gives
         * that part alone, up to the float rounding of a larger batch. Each owned by the caller.
         */
        java.util.List<Tensor> at(java.util.List<RowPart<C>> parts);

        @Override
        void close();
    }

    /** A {@link Denoiser.Velocity} that holds per-request state (RoPE tables, guidance arguments). */
    interface Velocity extends Denoiser.Velocity, AutoCloseable {
        @Override
        void close();
    }

    @Override
    void close();
}
