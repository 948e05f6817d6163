package io.mmdit4j.pipeline;

import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.ModulationVisitor;
import io.mmdit4j.lora.LoraReport;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelFamily;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.sampling.StepListener;

import java.util.List;

/**
 * A loaded model of any family, ready to generate ({@link Pipelines#load}). Every family runs the same skeleton: resolve
 * the request, encode the prompts, build the guidance plan, draw seeded noise, denoise, decode. Not for concurrent
 * use: one generation at a time (calls are serialised).
 *
 * <pre>{@code
 * try (Pipeline p = Pipelines.load("flux-tiny-demo");
 *      GenerationResult r = p.generate(GenerationRequest.builder().prompt("a wolf").seed(42)
 *              .guide(Direction.preset("aesthetics")).build())) {
 *     r.save(Path.of("wolf.png"));
 * }
 * }</pre>
 */
public interface Pipeline extends AutoCloseable {
    /** What the model was loaded from: a descriptor name or a path (recorded with every image). */
    String model();

    ModelFamily family();

    /** The model's descriptor, or null for a plain folder or file. */
    ModelDescriptor descriptor();

    DType dtype();

    DeviceSpec device();

    /** Blocks counted with the global guidance counter. */
    int numGuidedBlocks();

    /** The option types this model takes (others are refused by {@link #resolve}). */
    java.util.Set<Class<? extends GenerationOption>> supportedOptions();

    /** What a request that leaves something unset gets. */
    GenerationDefaults defaults();

    /** The request with every default filled in and every setting checked against this model; throws {@link InvalidRequestException}. */
    GenerationSettings resolve(GenerationRequest request);

    /** Warnings about settings that run but do nothing (a schedule selecting no block, a step window past the last step). */
    List<String> warnings(GenerationSettings settings);

    default GenerationResult generate(GenerationRequest request) {
        return generate(request, StepListener.NONE);
    }

    default GenerationResult generate(GenerationRequest request, StepListener listener) {
        return generate(resolve(request), listener, null);
    }

    /**
     * Generates resolved settings. {@code listener} sees every step and may cancel ({@link java.util.concurrent.CancellationException});
     * {@code observer} (nullable) sees each forward's per-block conditioning (modulation statistics, golden checks).
     */
    GenerationResult generate(GenerationSettings settings, StepListener listener, ConditioningObserver observer);

    /**
     * The first stage of {@link #generate}: encode, noise and every denoising step, up to the final latents (owned by the
     * result; close it, or hand it to {@link #decode}). Requests that {@code generate} would run in chunks are refused.
     */
    default Denoised denoise(GenerationSettings settings, StepListener listener) {
        throw new UnsupportedOptionException("denoise/decode stages: not available for " + getClass().getSimpleName());
    }

    /** Whether {@link #denoise} takes {@code settings} (one batch: {@link #generate} would not split it into chunks). */
    default boolean runsInOneBatch(GenerationSettings settings) {
        return false;
    }

    /**
     * The second stage: the VAE decode of {@code denoised} into the result {@code generate} gives (bit for bit). It may
     * run on another thread while this pipeline denoises the next request ({@link DecodeOverlap}); on failure
     * {@code denoised} keeps its latents.
     */
    default GenerationResult decode(Denoised denoised) {
        throw new UnsupportedOptionException("denoise/decode stages: not available for " + getClass().getSimpleName());
    }

    /**
     * Continuous batching: a {@link RowStepper} that steps the images of several requests in one forward, each at its own
     * step (a server's scheduler owns it). Families that cannot ({@link RowStepper#supported} false) run requests whole.
     */
    default RowStepper rowStepper() {
        throw new UnsupportedOptionException("row stepping: not available for " + getClass().getSimpleName());
    }

    /** The adaLN modulation vectors of the forward whose conditioning is {@code cond} (modulation statistics). */
    void modulations(BlockConditioning cond, ModulationVisitor visitor);

    /** What merging each LoRA did (empty without LoRAs). */
    List<LoraReport> loraReports();

    /** The family's own pipeline (e.g. {@code FluxPipeline}), for its intermediate steps; throws if it is another type. */
    <T> T unwrap(Class<T> type);

    @Override
    void close();
}
