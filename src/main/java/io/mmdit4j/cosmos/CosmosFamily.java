package io.mmdit4j.cosmos;

import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.GuidanceDefaults;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.models.DemoModels;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelFamily;
import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.FamilyPipeline;
import io.mmdit4j.pipeline.GenerationDefaults;
import io.mmdit4j.pipeline.GenerationOption;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.MemoryModel;
import io.mmdit4j.pipeline.WeightBytes;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.vae.wan.AutoencoderKLWan;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * COSMOS (Cosmos-Predict2 2B text-to-image) with the modulation-guidance paper's pooled-CLIP adapter: diffusers
 * {@code Cosmos2TextToImagePipeline} folders. Besides the folder it needs the adapter (yresearch/cosmos-pooled) and
 * FLUX.1-schnell's CLIP-L, found in this order: {@code --adapter FILE} / {@code --text-encoders DIR}; inside the model folder
 * ({@code pooled_adapter.safetensors}, the newest {@code checkpoint_<step>.pt}; {@code text_encoder_2/} + {@code tokenizer_2/});
 * {@code $MMDIT_MODELS/cosmos-pooled/} and {@code $MMDIT_MODELS/FLUX.1-schnell/}. Without an adapter the base model runs
 * (no pooled term, no modulation guidance).
 */
public final class CosmosFamily implements ModelFamily {
    public static final CosmosFamily INSTANCE = new CosmosFamily();
    /** The {@code _class_name} of its diffusers folders. */
    public static final String CLASS_NAME = "Cosmos2TextToImagePipeline";
    /** Where the adapter and the CLIP-L are looked up under {@code $MMDIT_MODELS} when not given. */
    public static final String ADAPTER_DIR = "cosmos-pooled", CLIP_DIR = "FLUX.1-schnell";
    static final Set<Class<? extends GenerationOption>> OPTIONS = Set.of(ClassifierFreeGuidance.class, io.mmdit4j.pipeline.PooledAdapterFile.class,
            io.mmdit4j.pipeline.InitImage.class);

    private CosmosFamily() {}

    @Override
    public String name() {
        return "cosmos";
    }

    @Override
    public boolean loadsPipelineClass(String className) {
        return className.equals(CLASS_NAME);
    }

    /** A wrapper state dict or a diffusers-named transformer file (recognised so that the error can say what to do). */
    @Override
    public boolean recognizesWeights(Set<String> names) {
        return names.contains("patch_embed.proj.weight") && names.contains("time_embed.t_embedder.linear_1.weight")
                || names.contains("transformer.patch_embed.proj.weight") && names.contains("transformer.time_embed.t_embedder.linear_1.weight");
    }

    /** The paper's settings: 768², 35 Karras steps, CFG 7 on the empty prompt, T5 at 512 tokens; w 3 from block 0, conditional pass only. */
    @Override
    public GenerationDefaults defaults() {
        return GenerationDefaults.of(768, 768, 35, 512, DType.F32, new GuidanceDefaults(3.0, LayerSchedule.parse("0-"), CfgRows.COND, Map.of()),
                new ClassifierFreeGuidance(7.0));
    }

    @Override
    public boolean supportsAdapter() {
        return true;
    }

    @Override
    public String sampler() {
        return "karras_x0_euler";
    }

    @Override
    public Capabilities capabilities(Path model, LoadOptions options) {
        requireFolder(model);
        return new Capabilities(CosmosTransformer.inspect(model.resolve("transformer")).numLayers(), OPTIONS);
    }

    @Override
    public void validate(GenerationSettings s) {
        checkSize(s.width(), s.height());
        if (s.maxSequenceLength() > 512) throw new InvalidRequestException("max sequence length must be in 1..512 (COSMOS's T5), got " + s.maxSequenceLength());
    }

    /** Sizes: multiples of 16 (the VAE's 8 times the transformer's patch 2). */
    static void checkSize(int width, int height) {
        if (width % 16 != 0 || height % 16 != 0) {
            throw new InvalidRequestException("COSMOS sizes must be multiples of 16 (VAE 8 × patch 2), got " + width + "x" + height);
        }
    }

    /** The transformer's configuration from its headers, the Wan VAE's from its config. */
    @Override
    public MemoryModel memoryModel(Path model, LoadOptions o) {
        requireFolder(model);
        return new CosmosMemory(CosmosTransformer.inspect(model.resolve("transformer")), AutoencoderKLWan.inspect(model.resolve("vae")),
                o.dtype() != null ? o.dtype() : DType.F32);
    }

    /**
     * The transformer, the Wan VAE, T5 and what the loader finds besides ({@link #load}): the adapter, and then the CLIP-L
     * text encoder only (not the rest of the folder it comes from, e.g. FLUX.1-schnell's transformer).
     */
    @Override
    public long weightBytes(Path model, LoadOptions o, DType compute) {
        long bytes = 0;
        for (String part : new String[] {"transformer", "vae", "text_encoder"}) bytes += WeightBytes.of(model.resolve(part), compute);
        Path modelsRoot = o.registryOrStandard().modelsRoot();
        Path adapter = o.adapter() != null ? o.adapter() : findAdapter(model, modelsRoot);
        if (adapter == null) return bytes;
        bytes += WeightBytes.of(adapter, compute); // a .pt checkpoint counts 0 here: a few million parameters
        try {
            Path clip = findClip(model, o.textEncoders(), modelsRoot);
            return bytes + WeightBytes.of(clip.resolve(CosmosTextEncoders.clipParts(clip)[1]), compute);
        } catch (InvalidRequestException e) {
            return bytes; // no CLIP-L: the loader says where it looked
        }
    }

    /** {@code --offload text}: T5 and CLIP-L are released after each request's text phase (and loaded again by the next). */
    @Override
    public boolean supportsOffload() {
        return true;
    }

    @Override
    public FamilyPipeline<?> load(Path model, LoadOptions o) {
        if (o.vae() != null) throw new InvalidRequestException("--vae is for an original single-file FLUX transformer; COSMOS loads its Wan VAE from vae/");
        requireFolder(model);
        Path modelsRoot = o.registryOrStandard().modelsRoot();
        Path adapter = o.adapter() != null ? o.adapter() : findAdapter(model, modelsRoot);
        Path clip = adapter == null ? null : findClip(model, o.textEncoders(), modelsRoot);
        return CosmosPipeline.load(model, adapter, clip, o.dtype(), o.device(), Boolean.TRUE.equals(o.offloadText())).withAdapterFile(adapter);
    }

    private static void requireFolder(Path model) {
        if (!Files.isDirectory(model)) {
            throw new InvalidRequestException(model + ": COSMOS generation needs a Cosmos-Predict2 diffusers folder (model_index.json with "
                    + "transformer/, vae/, scheduler/, text_encoder/ and tokenizer/); a wrapper state dict or adapter file goes in --adapter");
        }
    }

    /** The adapter in the model folder, else under {@code $MMDIT_MODELS/cosmos-pooled}, else null. */
    static Path findAdapter(Path model, Path modelsRoot) {
        Path own = adapterIn(model);
        if (own != null) return own;
        return modelsRoot == null ? null : adapterIn(modelsRoot.resolve(ADAPTER_DIR));
    }

    private static final Pattern CHECKPOINT = Pattern.compile("checkpoint_(\\d+)\\.(pt|pth|bin|safetensors)");

    /** {@code pooled_adapter.safetensors}, else the {@code checkpoint_<step>} with the highest step, else null. */
    static Path adapterIn(Path dir) {
        if (dir == null || !Files.isDirectory(dir)) return null;
        if (Files.isRegularFile(dir.resolve("pooled_adapter.safetensors"))) return dir.resolve("pooled_adapter.safetensors");
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> found = s.filter(p -> CHECKPOINT.matcher(p.getFileName().toString()).matches()).toList();
            return found.stream().max(Comparator.comparingLong(CosmosFamily::step)).orElse(null);
        } catch (IOException e) {
            return null;
        }
    }

    private static long step(Path p) {
        Matcher m = CHECKPOINT.matcher(p.getFileName().toString());
        return m.matches() ? Long.parseLong(m.group(1)) : -1;
    }

    /** The folder holding CLIP-L: the model's own {@code _2} parts, {@code --text-encoders}, {@code $MMDIT_MODELS/FLUX.1-schnell}. */
    static Path findClip(Path model, Path given, Path modelsRoot) {
        if (given != null) {
            if (CosmosTextEncoders.clipParts(given) == null) {
                throw new InvalidRequestException("--text-encoders " + given + ": no CLIP-L there (expected text_encoder/ + tokenizer/, e.g. FLUX.1-schnell)");
            }
            return given;
        }
        if (CosmosTextEncoders.clipParts(model) != null && Files.isDirectory(model.resolve("text_encoder_2"))) return model;
        if (modelsRoot != null && CosmosTextEncoders.clipParts(modelsRoot.resolve(CLIP_DIR)) != null) return modelsRoot.resolve(CLIP_DIR);
        throw new InvalidRequestException("COSMOS with the pooled-CLIP adapter needs FLUX.1-schnell's CLIP-L: give --text-encoders DIR (a folder "
                + "with text_encoder/ + tokenizer/), put text_encoder_2/ + tokenizer_2/ in " + model + ", or download black-forest-labs/FLUX.1-schnell to "
                + "$MMDIT_MODELS/" + CLIP_DIR + (modelsRoot == null ? " (MMDIT_MODELS is not set)" : ""));
    }

    @Override
    public void writeDemo(ModelDescriptor d, Path root, Path tokenizers) throws IOException {
        DemoModels.writeCosmos(d, root, tokenizers);
    }
}
