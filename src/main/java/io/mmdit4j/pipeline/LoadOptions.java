package io.mmdit4j.pipeline;

import io.mmdit4j.lora.LoraSpec;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How {@link Pipelines#load} loads a model: compute dtype (default: the model descriptor's, else fp32), device, LoRAs
 * (default: those the descriptor's recipe brings), for single-file FLUX checkpoints the VAE file and the folder of
 * text encoders (COSMOS: the folder of its pooled CLIP-L), a family's add-on weights file ({@code adapter}: COSMOS's
 * pooled-CLIP adapter); whether weights stay memory-mapped views of the checkpoint files (default) or are read into
 * memory; and the memory policy of its generations (the budget they are checked against before any work, and the most
 * images run as one batch, {@link MemoryPlanner}); folders that replace pipeline components ({@code components}: HiDream's
 * Llama) and whether the text encoders are offloaded ({@code offloadText}, null: the model's default). Immutable; build
 * with {@link #builder()}.
 *
 * @param memoryBudget bytes a generation may need: {@link #MEASURED} (the default: the memory available when it starts),
 *                     {@link #UNCHECKED}, or a fixed budget
 * @param maxBatch     the most images one transformer batch holds; larger requests run in chunks
 * @param offloadBlocks keep the transformer blocks' weights on the host and move each block to the device while it runs
 *                     ({@link io.mmdit4j.nn.BlockOffload}, {@code --offload blocks}); nothing changes on the CPU
 * @param cudaGraphs   record each denoising step as a CUDA graph and replay it ({@link io.mmdit4j.runtime.StepGraph},
 *                     {@code --cuda-graphs}); refused off CUDA and by families whose step is not graph-safe
 * @param stepCapture  the step-graph capture to use instead ({@link io.mmdit4j.runtime.StepGraph.EagerReplay} runs the
 *                     graph bookkeeping on the CPU or meta, for tests); null: none, or CUDA's with {@code cudaGraphs}
 */
public record LoadOptions(DType dtype, DeviceSpec device, List<LoraSpec> loras, boolean loraStrict, Path vae, Path textEncoders,
                          ModelRegistry registry, Path adapter, boolean memoryMapped, long memoryBudget, int maxBatch,
                          Map<String, Path> components, Boolean offloadText, boolean offloadBlocks,
                          boolean cudaGraphs, io.mmdit4j.runtime.StepGraph.Capture stepCapture) {
    /** {@link #memoryBudget}: check against the memory available when each generation starts. */
    public static final long MEASURED = 0;
    /** {@link #memoryBudget}: no memory check. */
    public static final long UNCHECKED = -1;
    /** Images per chunk unless set: enough rows to fill a CPU's GEMMs, few enough that activations stay small. */
    public static final int DEFAULT_MAX_BATCH = 8;

    public LoadOptions {
        if (device == null) device = DeviceSpec.CPU;
        if (loras != null) loras = List.copyOf(loras);
        if (memoryBudget < UNCHECKED) throw new IllegalArgumentException("memory budget must be a byte count, MEASURED or UNCHECKED, got " + memoryBudget);
        if (maxBatch < 1) throw new IllegalArgumentException("max batch must be >= 1, got " + maxBatch);
        components = components == null ? Map.of() : Map.copyOf(components);
    }

    /** The folder given for a pipeline component (e.g. {@code text_encoder_4}), or null: the model folder's own. */
    public Path component(String name) {
        return components.get(name);
    }

    public static LoadOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The registry that resolves model names (default: {@link ModelRegistry#standard()}). */
    public ModelRegistry registryOrStandard() {
        return registry != null ? registry : ModelRegistry.standard();
    }

    public Builder toBuilder() {
        Builder b = new Builder();
        b.dtype = dtype;
        b.device = device;
        b.loras = loras == null ? null : new ArrayList<>(loras);
        b.loraStrict = loraStrict;
        b.vae = vae;
        b.textEncoders = textEncoders;
        b.registry = registry;
        b.adapter = adapter;
        b.memoryMapped = memoryMapped;
        b.memoryBudget = memoryBudget;
        b.maxBatch = maxBatch;
        b.components = new LinkedHashMap<>(components);
        b.offloadText = offloadText;
        b.offloadBlocks = offloadBlocks;
        b.cudaGraphs = cudaGraphs;
        b.stepCapture = stepCapture;
        return b;
    }

    public static final class Builder {
        private DType dtype;
        private DeviceSpec device = DeviceSpec.CPU;
        private List<LoraSpec> loras;
        private boolean loraStrict;
        private Path vae;
        private Path textEncoders;
        private ModelRegistry registry;
        private Path adapter;
        private boolean memoryMapped = true;
        private long memoryBudget = MEASURED;
        private int maxBatch = DEFAULT_MAX_BATCH;
        private Map<String, Path> components = new LinkedHashMap<>();
        private Boolean offloadText;
        private boolean offloadBlocks;
        private boolean cudaGraphs;
        private io.mmdit4j.runtime.StepGraph.Capture stepCapture;

        private Builder() {}

        /**
         * A folder that replaces the model folder's component {@code name} (a diffusers component such as
         * {@code text_encoder_4} or {@code tokenizer_4}): HiDream's Llama-3.1-8B-Instruct lives outside its folder.
         */
        public Builder component(String name, Path folder) {
            if (name == null || name.isBlank()) throw new IllegalArgumentException("component name is empty");
            if (folder == null) components.remove(name);
            else components.put(name, folder);
            return this;
        }

        /**
         * Run the text encoders one at a time and release them before the transformer loads (and the transformer before
         * the next request's text encoding): peak memory is the largest part instead of the sum (null: the model's default).
         */
        public Builder offloadText(Boolean offload) {
            this.offloadText = offload;
            return this;
        }

        /** Compute dtype (fp32, bf16); default: the model descriptor's, else fp32. */
        public Builder dtype(DType dtype) {
            this.dtype = dtype;
            return this;
        }

        public Builder device(DeviceSpec device) {
            this.device = device;
            return this;
        }

        /** Adds a LoRA to merge (in order); giving any replaces the LoRA a model recipe brings. */
        public Builder lora(Path file, double scale) {
            if (loras == null) loras = new ArrayList<>();
            loras.add(new LoraSpec(file, scale));
            return this;
        }

        /** The LoRAs to merge (an empty list: none, not even the recipe's; null: the recipe's). */
        public Builder loras(List<LoraSpec> loras) {
            this.loras = loras == null ? null : new ArrayList<>(loras);
            return this;
        }

        /** Fail when a LoRA has keys that target nothing in the model (default: a warning). */
        public Builder loraStrict(boolean strict) {
            this.loraStrict = strict;
            return this;
        }

        /** {@code ae.safetensors} for an original single-file FLUX transformer. */
        public Builder vae(Path vae) {
            this.vae = vae;
            return this;
        }

        /** A folder with {@code tokenizer/}, {@code text_encoder/}, {@code tokenizer_2/}, {@code text_encoder_2/} for a single-file FLUX transformer. */
        public Builder textEncoders(Path folder) {
            this.textEncoders = folder;
            return this;
        }

        /** Add-on weights a family loads with the model (COSMOS: the pooled-CLIP adapter file); families without any refuse it. */
        public Builder adapter(Path file) {
            this.adapter = file;
            return this;
        }

        public Builder registry(ModelRegistry registry) {
            this.registry = registry;
            return this;
        }

        /**
         * True (default): weights are views of the memory-mapped checkpoints (no copy, pages load on demand), and a checkpoint
         * that changes on disk fails the next generation; truncating one while a forward pass reads it crashes the process
         * (SIGBUS). False: every tensor is read into memory, so the files may change once the model is loaded.
         */
        public Builder memoryMapped(boolean memoryMapped) {
            this.memoryMapped = memoryMapped;
            return this;
        }

        /** Whether generations are refused when their memory estimate exceeds the memory available (default: true). */
        public Builder checkMemory(boolean check) {
            this.memoryBudget = check ? MEASURED : UNCHECKED;
            return this;
        }

        /** Checks generations against a fixed budget of {@code bytes} instead of the memory available. */
        public Builder memoryBudget(long bytes) {
            this.memoryBudget = bytes;
            return this;
        }

        /** The most images one transformer batch holds (default {@value LoadOptions#DEFAULT_MAX_BATCH}); larger requests run in chunks. */
        public Builder maxBatch(int images) {
            this.maxBatch = images;
            return this;
        }

        /**
         * Keeps the transformer blocks' weights on the host (pinned) and moves each block to the device just before it runs,
         * prefetching the next on a side stream (default: false): for devices smaller than the model. A no-op on the CPU.
         */
        public Builder offloadBlocks(boolean offload) {
            this.offloadBlocks = offload;
            return this;
        }

        /**
         * Records each denoising step as a CUDA graph and replays it (default: false): one launch per step instead of one
         * per kernel. Needs a CUDA device and the GPU build ({@code mvn -Pcuda}); refused on the CPU and meta, and by
         * families other than FLUX. Never run on a GPU (none here).
         */
        public Builder cudaGraphs(boolean on) {
            this.cudaGraphs = on;
            return this;
        }

        /** A step-graph capture of the caller's ({@link io.mmdit4j.runtime.StepGraph.EagerReplay} in tests), on any device. */
        public Builder stepCapture(io.mmdit4j.runtime.StepGraph.Capture capture) {
            this.stepCapture = capture;
            return this;
        }

        public LoadOptions build() {
            return new LoadOptions(dtype, device, loras, loraStrict, vae, textEncoders, registry, adapter, memoryMapped, memoryBudget, maxBatch,
                    components, offloadText, offloadBlocks, cudaGraphs, stepCapture);
        }
    }
}
