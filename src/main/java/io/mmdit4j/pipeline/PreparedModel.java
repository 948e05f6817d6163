package io.mmdit4j.pipeline;

import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.GuidanceDefaults;
import io.mmdit4j.guidance.GuidancePlan;
import io.mmdit4j.lora.LoraSpec;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelFamily;
import io.mmdit4j.runtime.DType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model found and recognised, not yet loaded ({@link Pipelines#prepare}): its family, descriptor, defaults and load
 * options. {@link #resolve} checks a request completely from checkpoint headers alone, so bad input fails in a second,
 * before gigabytes of weights load; {@link #load} then loads it.
 */
public final class PreparedModel {
    private final String model;
    private final ModelDescriptor descriptor;
    private final Path path;
    private final ModelFamily family;
    private final GenerationDefaults defaults;
    private final LoadOptions options;
    private ModelFamily.Capabilities capabilities;
    private MemoryModel memoryModel;
    private Long weightBytes;

    PreparedModel(String model, ModelDescriptor descriptor, Path path, ModelFamily family, GenerationDefaults defaults, LoadOptions options) {
        this.model = model;
        this.descriptor = descriptor;
        this.path = path;
        this.family = family;
        this.defaults = defaults;
        this.options = options;
    }

    public String model() { return model; }
    public ModelDescriptor descriptor() { return descriptor; }
    /** The model's files on disk. */
    public Path path() { return path; }
    public ModelFamily family() { return family; }
    public GenerationDefaults defaults() { return defaults; }
    /** The load options with the dtype and LoRAs that will be used. */
    public LoadOptions options() { return options; }

    /** The checkpoint's guidance blocks and option types, from its headers. */
    public synchronized ModelFamily.Capabilities capabilities() {
        if (capabilities == null) capabilities = family.capabilities(path, options);
        return capabilities;
    }

    /** Blocks counted with the global guidance counter, from the checkpoint headers. */
    public int numGuidedBlocks() {
        return capabilities().numGuidedBlocks();
    }

    /**
     * See {@link Pipeline#resolve}: the same checks, from the checkpoint headers, and that the generation fits in memory
     * with the weights still to load ({@link #memory}; {@link InsufficientMemoryException} names what it needs).
     */
    public GenerationSettings resolve(GenerationRequest r) {
        GenerationSettings s = resolve(r, capabilities().options(), numGuidedBlocks());
        MemoryPlanner.check(memory(s), options.memoryBudget());
        return s;
    }

    /** What {@code s} needs in memory on this model, the weights included, and how its images are chunked. */
    public MemoryEstimate memory(GenerationSettings s) {
        return memory(s, true);
    }

    /**
     * @param withWeights whether the weights are still to load; on another device than the CPU they and the activations
     *                    live in device memory, which is not checked here, so only the results (which come back to the
     *                    CPU) count
     */
    MemoryEstimate memory(GenerationSettings s, boolean withWeights) {
        MemoryEstimate e = MemoryPlanner.estimate(s, memoryModel(), withWeights && options.device().isCpu() ? weightBytes() : 0, options.maxBatch());
        if (options.device().isCpu()) return e;
        return new MemoryEstimate(0, 0, e.resultBytes(), e.runtimeBytes(), e.chunkImages(), e.images());
    }

    synchronized MemoryModel memoryModel() {
        if (memoryModel == null) memoryModel = family.memoryModel(path, options);
        return memoryModel;
    }

    private synchronized long weightBytes() {
        if (weightBytes == null) weightBytes = family.weightBytes(path, options, options.dtype());
        return weightBytes;
    }

    public List<String> warnings(GenerationSettings s) {
        return GuidancePlan.warnings(s.guidance(), numGuidedBlocks(), s.steps());
    }

    /** Loads the model (and merges its LoRAs). */
    public Pipeline load() {
        for (LoraSpec l : options.loras()) {
            if (!Files.isRegularFile(l.file())) throw new InvalidRequestException("--lora: no such file: " + l.file());
        }
        if (!options.loras().isEmpty() && !family.supportsLora()) {
            throw new UnsupportedOptionException("LoRA (--lora): not supported for " + family.name() + " models");
        }
        if (Boolean.TRUE.equals(options.offloadText()) && !family.supportsOffload()) {
            throw new UnsupportedOptionException("--offload text: not supported for " + family.name() + " models");
        }
        for (String c : options.components().keySet()) {
            if (!family.components().contains(c)) {
                throw new UnsupportedOptionException("component '" + c + "': " + family.name() + " models take "
                        + (family.components().isEmpty() ? "no component folders" : "only " + new java.util.TreeSet<>(family.components())));
            }
        }
        if (options.adapter() != null && !family.supportsAdapter()) {
            throw new UnsupportedOptionException("adapter weights (--adapter): not supported for " + family.name() + " models");
        }
        if (options.offloadBlocks() && !options.device().isCpu() && !family.supportsBlockOffload()) {
            throw new UnsupportedOptionException("block offload (--offload blocks): not supported for " + family.name() + " models");
        }
        if (options.cudaGraphs() && options.stepCapture() == null && !options.device().isCuda()) {
            throw new InvalidRequestException("--cuda-graphs needs a CUDA device (this model would run on " + options.device()
                    + "): CUDA graphs replay recorded GPU kernels, there is nothing to record on " + options.device());
        }
        if (options.adapter() != null && !Files.exists(options.adapter())) {
            throw new InvalidRequestException("--adapter: no such file: " + options.adapter());
        }
        memoryModel(); // read from the checkpoint headers now: the files may change or go once the weights are loaded
        return LoadedPipeline.load(this);
    }

    /** The one resolution of a request against a model, shared by the prepared and the loaded model. */
    GenerationSettings resolve(GenerationRequest r, Set<Class<? extends GenerationOption>> supported, int blocks) {
        for (GenerationOption o : r.options()) {
            if (!supported.contains(o.getClass())) {
                throw new UnsupportedOptionException(o.description() + ": not supported by " + (descriptor != null ? descriptor.name() : path)
                        + " (" + family.name() + " family)" + supportedText(supported));
            }
        }
        Map<Class<? extends GenerationOption>, GenerationOption> opts = new LinkedHashMap<>();
        defaults.options().forEach((type, o) -> {
            if (supported.contains(type)) opts.put(type, o);
        });
        r.options().forEach(o -> opts.put(o.getClass(), o));
        int[] implied = null; // an init image's size, the last scale of scale-wise sampling
        for (GenerationOption o : opts.values()) {
            if (implied == null) implied = o.impliedSize();
        }
        int width = r.width() != null ? r.width() : implied != null ? implied[0] : defaults.width();
        int height = r.height() != null ? r.height() : implied != null ? implied[1] : defaults.height();
        GenerationRequest.checkSize(width, height);
        CustomSigmas sigmas = (CustomSigmas) opts.get(CustomSigmas.class);
        int steps;
        if (r.steps() != null) steps = r.steps();
        else steps = sigmas != null ? sigmas.steps() : defaults.steps();
        if (sigmas != null && sigmas.steps() != steps) {
            throw new InvalidRequestException(sigmas.sigmas().length + " sigmas describe " + sigmas.steps() + " steps, but steps is " + steps);
        }
        GuidanceDefaults g = defaults.guidance();
        List<Direction> dirs = new ArrayList<>();
        for (Direction d : r.guidance()) {
            try {
                dirs.add(d.isResolved() ? d : g.resolve(d));
            } catch (IllegalArgumentException e) {
                throw new InvalidRequestException(e.getMessage(), e);
            }
        }
        for (GenerationOption o : opts.values()) {
            if (o instanceof NegativePrompts n) n.negatives(r.prompts().size()); // one, or one per prompt
        }
        GenerationSettings s = new GenerationSettings(model, family.name(), options.dtype(), r.prompts(), r.imagesPerPrompt(),
                width, height, steps, r.seedsPerImage(),
                r.maxSequenceLength() != null ? r.maxSequenceLength() : defaults.maxSequenceLength(), dirs, r.normControl(), opts,
                options.loras(), options.loraStrict(), family.sampler(), r.initialNoise());
        try {
            GuidancePlan.check(s.guidance(), s.images(), blocks);
            family.validate(s);
            ImageToImage.check(s);
        } catch (IllegalArgumentException e) {
            throw e instanceof InvalidRequestException ? e : new InvalidRequestException(e.getMessage(), e);
        }
        return s;
    }

    private static String supportedText(Set<Class<? extends GenerationOption>> supported) {
        if (supported.isEmpty()) return "; this model takes no family options";
        List<String> names = new ArrayList<>();
        for (Class<? extends GenerationOption> c : supported) names.add(GenerationOptions.describe(c));
        names.sort(null);
        return "; this model takes " + String.join(", ", names);
    }

    /** The dtype a model loads with: the option's, else the descriptor's default, else fp32. */
    static DType dtype(LoadOptions o, GenerationDefaults d) {
        return o.dtype() != null ? o.dtype() : d.dtype() != null ? d.dtype() : DType.F32;
    }
}
