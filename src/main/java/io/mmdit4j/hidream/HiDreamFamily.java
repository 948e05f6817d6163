package io.mmdit4j.hidream;

import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.GuidanceDefaults;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.models.DemoModels;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelFamily;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.FamilyPipeline;
import io.mmdit4j.pipeline.GenerationDefaults;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.MemoryModel;
import io.mmdit4j.pipeline.SampleSize;
import io.mmdit4j.pipeline.WeightBytes;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.vae.AutoencoderKL;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * HiDream-I1 (Full, Dev, Fast): diffusers {@code HiDreamImagePipeline} folders, with Llama-3.1-8B-Instruct as
 * {@code text_encoder_4} / {@code tokenizer_4} from the folder, from {@code --llama DIR}
 * ({@link LoadOptions#component}), or from {@code $MMDIT_MODELS/Meta-Llama-3.1-8B-Instruct} (HiDream's own repositories
 * do not ship it).
 */
public final class HiDreamFamily implements ModelFamily {
    public static final HiDreamFamily INSTANCE = new HiDreamFamily();
    /** The {@code _class_name} of its diffusers folders. */
    public static final String CLASS_NAME = "HiDreamImagePipeline";
    /** Where a Llama-3.1-8B-Instruct folder is looked for, beside the model or under {@code $MMDIT_MODELS}. */
    public static final List<String> LLAMA_FOLDERS = List.of("Meta-Llama-3.1-8B-Instruct", "Llama-3.1-8B-Instruct");
    /** The text encoders inside the folder (the Llama, {@code text_encoder_4}, may be elsewhere: {@link #llama}). */
    static final List<String> TEXT_ENCODERS = List.of("text_encoder", "text_encoder_2", "text_encoder_3");


    private HiDreamFamily() {}

    @Override
    public String name() {
        return "hidream";
    }

    @Override
    public boolean loadsPipelineClass(String className) {
        return className.equals(CLASS_NAME);
    }

    @Override
    public boolean recognizesWeights(Set<String> tensorNames) {
        return HiDreamConfig.recognizes(tensorNames);
    }

    /**
     * diffusers' {@code HiDreamImagePipeline.__call__} defaults (1024², 50 steps, CFG 5 with negative prompt "", max
     * sequence length 128, the 1024-pixel area resize); METHOD.md §4: w 3 from block 5; CFG halves: conditional +w,
     * unconditional −w ({@link CfgRows#COND_NEG}; the reference's batch-of-2 rule is {@link CfgRows#REFERENCE_PAIR}).
     * A model descriptor gives each variant its own (Fast: 16 steps, no CFG).
     */
    @Override
    public GenerationDefaults defaults() {
        return GenerationDefaults.of(1024, 1024, 50, HiDreamTextEncoders.DEFAULT_MAX_SEQUENCE_LENGTH, DType.F32,
                new GuidanceDefaults(3.0, LayerSchedule.from(5), CfgRows.COND_NEG, Map.of()), new ClassifierFreeGuidance(5.0), new SampleSize(1024));
    }

    @Override
    public boolean supportsOffload() {
        return true;
    }

    @Override
    public Set<String> components() {
        return Set.of("text_encoder_4", "tokenizer_4");
    }

    /** Guidance blocks and options from the transformer's headers; a missing Llama encoder fails here, before any loading. */
    @Override
    public Capabilities capabilities(Path model, LoadOptions options) {
        requireFolder(model);
        HiDreamConfig c = HiDreamTransformer.inspect(model.resolve("transformer"));
        llama(model, options);
        return new Capabilities(c.totalBlocks(), HiDreamPipeline.OPTIONS);
    }

    /** The transformer's configuration from its headers, the VAE's from its config. */
    @Override
    public MemoryModel memoryModel(Path model, LoadOptions o) {
        requireFolder(model);
        return new HiDreamMemory(HiDreamTransformer.inspect(model.resolve("transformer")), AutoencoderKL.inspect(model.resolve("vae")),
                o.dtype() != null ? o.dtype() : DType.F32);
    }

    /**
     * The transformer, the VAE and the four text encoders (the Llama wherever {@link #llama} finds it); with the text
     * encoders offloaded ({@link LoadOptions#offloadText}, or by default when {@link #needsOffload}) only the largest of
     * them or the transformer is loaded at a time.
     */
    @Override
    public long weightBytes(Path model, LoadOptions o, DType compute) {
        Path llama = llama(model, o)[0];
        long transformer = WeightBytes.of(model.resolve("transformer"), compute), vae = WeightBytes.of(model.resolve("vae"), compute);
        long largest = WeightBytes.of(llama, compute), text = largest;
        for (String part : TEXT_ENCODERS) {
            long b = WeightBytes.of(model.resolve(part), compute);
            text += b;
            largest = Math.max(largest, b);
        }
        boolean offload = o.offloadText() != null ? o.offloadText() : needsOffload(model, llama);
        return vae + (offload ? Math.max(transformer, largest) : transformer + text);
    }

    @Override
    public FamilyPipeline<?> load(Path model, LoadOptions o) {
        if (o.vae() != null || o.textEncoders() != null) {
            throw new InvalidRequestException("--vae / --text-encoders are for an original single-file FLUX transformer; HiDream loads from a "
                    + "diffusers folder (model_index.json), with --llama DIR for its Llama-3.1 text encoder");
        }
        requireFolder(model);
        Path[] llama = llama(model, o);
        boolean offload = o.offloadText() != null ? o.offloadText() : needsOffload(model, llama[0]);
        return HiDreamPipeline.load(model, llama[0], llama[1], o.dtype(), o.device(), offload);
    }

    /** A diffusers HiDream folder: its model_index.json names {@value #CLASS_NAME}. */
    private static void requireFolder(Path model) {
        if (!Files.isDirectory(model)) {
            throw new InvalidRequestException(model + ": HiDream generation needs a diffusers folder (model_index.json with transformer/, vae/, "
                    + "the text encoders and tokenizers), not a single file");
        }
        io.mmdit4j.io.DiffusersFolders.checkModelIndex(model, CLASS_NAME, "a diffusers HiDream folder");
    }

    /**
     * The Llama text encoder folder and its tokenizer folder: {@code --llama DIR} (components {@code text_encoder_4} /
     * {@code tokenizer_4}), else the model folder's, else a Llama-3.1-8B-Instruct folder beside the model or under
     * {@code $MMDIT_MODELS}; an error that says where it was looked for when there is none.
     */
    public static Path[] llama(Path model, LoadOptions o) {
        Path encoder = o.component("text_encoder_4"), tokenizer = o.component("tokenizer_4");
        if (encoder == null && Files.isRegularFile(model.resolve("text_encoder_4/config.json"))) encoder = model.resolve("text_encoder_4");
        if (encoder == null) {
            ModelRegistry r = o.registryOrStandard();
            for (Path root : Stream.of(model.toAbsolutePath().getParent(), r.modelsRoot()).filter(p -> p != null).toList()) {
                for (String name : LLAMA_FOLDERS) {
                    if (encoder == null && Files.isRegularFile(root.resolve(name).resolve("config.json"))) encoder = root.resolve(name);
                }
            }
        }
        if (encoder == null) {
            throw new ModelFormatException(model + ": HiDream needs Llama-3.1-8B-Instruct as its fourth text encoder, and there is none: no "
                    + "text_encoder_4/ in the folder, no " + LLAMA_FOLDERS.get(0) + "/ beside it or under $MMDIT_MODELS. Give its transformers "
                    + "folder (config.json, the safetensors, tokenizer.json) with --llama DIR");
        }
        if (!Files.isRegularFile(encoder.resolve("config.json"))) {
            throw new ModelFormatException(encoder + ": not a Llama text encoder folder (no config.json); --llama takes the transformers folder of "
                    + "Llama-3.1-8B-Instruct");
        }
        if (tokenizer == null) {
            tokenizer = Files.isRegularFile(model.resolve("tokenizer_4/tokenizer.json")) && encoder.equals(model.resolve("text_encoder_4"))
                    ? model.resolve("tokenizer_4") : encoder;
        }
        if (!Files.isRegularFile(tokenizer.resolve("tokenizer.json"))) {
            throw new ModelFormatException(tokenizer + ": no tokenizer.json for the Llama text encoder (tokenizer_4); --llama takes the "
                    + "Llama-3.1-8B-Instruct folder, which holds its tokenizer");
        }
        return new Path[] {encoder, tokenizer};
    }

    /** Whether the weights (transformer and text encoders) exceed three quarters of this machine's memory. */
    static boolean needsOffload(Path model, Path llama) {
        long bytes = size(model.resolve("transformer")) + size(llama);
        for (String part : TEXT_ENCODERS) bytes += size(model.resolve(part));
        long physical = ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getTotalMemorySize();
        return bytes > physical / 4 * 3;
    }

    private static long size(Path dir) {
        if (!Files.isDirectory(dir)) return 0;
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(f -> f.getFileName().toString().endsWith(".safetensors")).mapToLong(f -> f.toFile().length()).sum();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void writeDemo(ModelDescriptor d, Path root, Path tokenizers) throws IOException {
        DemoModels.writeHiDream(d, root, tokenizers);
    }

    /** The scheduler recorded with each image: the model's own (UniPC for Full, FlowMatchLCM for Fast and Dev). */
    @Override
    public String sampler() {
        return "scheduler_config";
    }
}
