package io.mmdit4j.models;

import io.mmdit4j.pipeline.FamilyPipeline;
import io.mmdit4j.pipeline.GenerationDefaults;
import io.mmdit4j.pipeline.GenerationOption;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.MemoryModel;
import io.mmdit4j.pipeline.WeightBytes;
import io.mmdit4j.runtime.DType;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Set;

/**
 * A model family (FLUX, SD3, HunyuanVideo, ...): how to recognise its checkpoints, load them, and what it generates by
 * default. A family is its package plus one line in {@link Families}; everything else (requests, guidance, the
 * denoising loop, outputs and their metadata, the command line) is shared.
 */
public interface ModelFamily {
    /** The family's name in model descriptors and settings records ({@code flux}, {@code sd3}, {@code hunyuan-video}). */
    String name();

    /** Whether a diffusers folder whose {@code model_index.json} names {@code className} is this family's. */
    boolean loadsPipelineClass(String className);

    /** Whether a single checkpoint file with these tensor names is this family's (e.g. an original BFL FLUX file). */
    default boolean recognizesWeights(Set<String> tensorNames) {
        return false;
    }

    /** True for video models (outputs are frames, written as MP4 / WebM / GIF). */
    default boolean video() {
        return false;
    }

    /** The family's defaults, before a model descriptor's ({@link GenerationDefaults#withDescriptor}). */
    GenerationDefaults defaults();

    /** Whether LoRAs can be merged into this family's transformer ({@link FamilyPipeline#applyLora}). */
    default boolean supportsLora() {
        return false;
    }

    /** Whether this family's transformer offloads its blocks ({@link LoadOptions#offloadBlocks}) on an accelerator. */
    default boolean supportsBlockOffload() {
        return false;
    }

    /** Whether its pipeline can release the text encoders before the transformer loads ({@link LoadOptions#offloadText}). */
    default boolean supportsOffload() {
        return false;
    }

    /** The pipeline components a {@link LoadOptions#component} may replace (e.g. HiDream's {@code text_encoder_4}). */
    default Set<String> components() {
        return Set.of();
    }

    /** Whether models of this family load add-on weights ({@link LoadOptions#adapter}: COSMOS's pooled-CLIP adapter). */
    default boolean supportsAdapter() {
        return false;
    }

    /**
     * What a checkpoint can do, read from its headers only (no weights are loaded): its guidance blocks and the option
     * types it takes (e.g. embedded guidance only for a guidance-distilled FLUX), so requests are checked completely
     * before loading.
     */
    Capabilities capabilities(Path model, LoadOptions options);

    /** Blocks counted with the global guidance counter, and the option types a model takes. */
    record Capabilities(int numGuidedBlocks, Set<Class<? extends GenerationOption>> options) {
        public Capabilities {
            options = Set.copyOf(options);
        }
    }

    /**
     * What a generation with this checkpoint needs in memory besides its weights, from its configuration (headers and
     * config files; no weights loaded), for the check before any work and for batch chunking. The default counts only the
     * decoded images; families give their transformer's and decoder's activations.
     */
    default MemoryModel memoryModel(Path model, LoadOptions options) {
        return new MemoryModel() {
            @Override
            public long workingBytes(GenerationSettings s, int images) {
                return (long) images * resultBytes(s);
            }

            @Override
            public long resultBytes(GenerationSettings s) {
                return 3L * s.width() * s.height() * Float.BYTES;
            }
        };
    }

    /**
     * The bytes the weights of a generation's model take at their peak once loaded in {@code compute}, from the checkpoint
     * headers (the memory check before loading). The default counts every weights file of the model folder and the VAE
     * file and text-encoder folder the options give ({@link WeightBytes#of(Path, LoadOptions, DType)}); a family whose
     * loader reads weights from elsewhere, only part of a folder, or not all at once counts its own parts.
     */
    default long weightBytes(Path model, LoadOptions options, DType compute) {
        return WeightBytes.of(model, options, compute);
    }

    /** The family's rules on resolved settings (e.g. HunyuanVideo's 4k+1 frames), checked before any model loads. */
    default void validate(GenerationSettings settings) {}

    /** Loads a diffusers folder (or the family's single-file layout) with {@code options}' dtype and device. */
    FamilyPipeline<?> load(Path model, LoadOptions options);

    /** Writes a generated demo model (random weights, real tokenizers) described by {@code d} into {@code root}. */
    default void writeDemo(ModelDescriptor d, Path root, Path tokenizers) throws IOException {
        throw new IllegalArgumentException(d.file() + ": generated demo models do not exist for the " + name() + " family");
    }

    /** The sampler recorded with each image. */
    default String sampler() {
        return "flow_match_euler";
    }
}
