package io.mmdit4j.train;

import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxParameters;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.RandomWeights;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.bytedeco.pytorch.global.torch.zeros;

/**
 * A FLUX transformer set up for training: every parameter an fp32 leaf tensor (the engine's own modules hold views of
 * them, so {@link FluxTransformer#forwardWithGrad} sends gradients to these), either all trainable (full fine-tune) or
 * all frozen with PEFT-style LoRA matrices attached to chosen Linears ({@code lora_A} (r, in), {@code lora_B} (out, r),
 * {@code y = W·x + b + B·A·x·alpha/r}) as the only trainable tensors.
 *
 * <p>Names are diffusers' ({@code transformer_blocks.0.attn.to_q.weight}; LoRA: {@code <module>.lora_A.weight}), in the
 * order of {@link FluxParameters#shapes} (the loader's order, which is also {@code named_parameters()}'s for the
 * diffusers module tree up to the order of sub-modules). Owns every tensor; close it.
 */
public final class FluxTrainable implements AutoCloseable {
    private final FluxConfig config;
    private final FluxTransformer model;
    private final Map<String, Tensor> base;                        // every transformer parameter (fp32 leaf)
    private final Map<String, Tensor> trainable = new LinkedHashMap<>();
    private final Map<String, Tensor> lora = new LinkedHashMap<>(); // LoRA matrices (also in trainable)
    private final List<String> loraModules = new ArrayList<>();
    private double loraScale = Double.NaN;
    private int loraRank;

    private final DType dtype;

    private FluxTrainable(FluxConfig config, Map<String, Tensor> base, boolean trainBase, DType dtype) {
        this.config = config;
        this.base = base;
        this.dtype = dtype;
        this.model = FluxTransformer.fromStateDict(RandomWeights.asStateDict("trainable FLUX", base), config, dtype);
        if (trainBase) trainable.putAll(base);
    }

    /**
     * From diffusers-named tensors (any float dtype; copied to fp32 leaves) for {@code config}; every expected tensor must
     * be there and nothing else. {@code trainBase}: the base weights require grad (full fine-tune), else they are frozen.
     */
    public static FluxTrainable of(FluxConfig config, Map<String, Tensor> weights, boolean trainBase) {
        return of(config, weights, trainBase, DType.F32);
    }

    /** As {@link #of(FluxConfig, Map, boolean)} in {@code dtype}: F32 (training) or F64 (gradient checks). */
    public static FluxTrainable of(FluxConfig config, Map<String, Tensor> weights, boolean trainBase, DType dtype) {
        if (dtype != DType.F32 && dtype != DType.F64) throw new IllegalArgumentException("training runs in fp32 (or fp64 for checks), not " + dtype);
        Torch.init();
        Map<String, long[]> shapes = FluxParameters.shapes(config);
        Map<String, Tensor> base = new LinkedHashMap<>();
        try (PointerScope scope = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                Tensor t = weights.get(e.getKey());
                if (t == null) throw new ModelFormatException("trainable FLUX: missing tensor '" + e.getKey() + "'");
                if (!java.util.Arrays.equals(Tensors.shape(t), e.getValue())) {
                    throw new ModelFormatException("trainable FLUX: tensor '" + e.getKey() + "' has shape " + java.util.Arrays.toString(Tensors.shape(t))
                            + ", expected " + java.util.Arrays.toString(e.getValue()));
                }
                base.put(e.getKey(), Native.keep(t.to(dtype.scalarType()).contiguous().clone().detach().requires_grad_(trainBase)));
            }
            for (String k : weights.keySet()) {
                if (!shapes.containsKey(k)) throw new ModelFormatException("trainable FLUX: unexpected tensor '" + k + "' for " + config);
            }
        } catch (RuntimeException e) {
            base.values().forEach(Native::release);
            throw e;
        }
        try {
            return new FluxTrainable(config, base, trainBase, dtype);
        } catch (RuntimeException e) {
            base.values().forEach(Native::release);
            throw e;
        }
    }

    /** Loads a diffusers {@code transformer/} folder (or a model folder holding one) for training. */
    public static FluxTrainable load(Path path, boolean trainBase) {
        Path dir = FluxTransformer.transformerPath(path);
        if (!Files.isRegularFile(dir.resolve("config.json"))) throw new ModelFormatException(dir + ": no config.json (a diffusers transformer folder is needed to train)");
        FluxConfig config = FluxConfig.fromDiffusersConfig(dir.resolve("config.json"));
        Map<String, Tensor> w = new LinkedHashMap<>();
        try (TensorSource source = WeightFiles.open(dir); PointerScope scope = new PointerScope()) {
            StateDict sd = StateDict.of(source);
            for (String k : sd.keys()) w.put(k, sd.take(k, DType.F32, sd.shape(k)));
            return of(config, w, trainBase);
        } finally {
            w.values().forEach(Native::release);
        }
    }

    /** Deterministic random weights ({@link FluxTransformer#randomWeights}) for tests and from-scratch training. */
    public static FluxTrainable random(FluxConfig config, long seed, boolean trainBase) {
        return random(config, seed, trainBase, DType.F32);
    }

    public static FluxTrainable random(FluxConfig config, long seed, boolean trainBase, DType dtype) {
        Map<String, Tensor> w = FluxTransformer.randomWeights(config, seed, DType.F32);
        try {
            return of(config, w, trainBase, dtype);
        } finally {
            Tensors.closeAll(w.values());
        }
    }

    /**
     * Attaches LoRA matrices of rank {@code r} to every Linear whose diffusers name ends with one of {@code targets}
     * (PEFT's suffix match: {@code to_q} matches {@code transformer_blocks.0.attn.to_q}, not {@code add_q_proj}), scale
     * {@code alpha / r}. Initial matrices come from {@code initial} ({@code <module>.lora_A.weight}/{@code lora_B.weight})
     * where given, else PEFT's {@code init_lora_weights="gaussian"}: A ~ N(0, 1/r²) from {@code seed}, B = 0.
     */
    public void addLora(List<String> targets, int r, double alpha, Map<String, Tensor> initial, long seed) {
        if (!loraModules.isEmpty()) throw new IllegalStateException("a LoRA is attached already");
        if (r < 1) throw new IllegalArgumentException("LoRA rank must be >= 1, got " + r);
        if (targets.isEmpty()) throw new IllegalArgumentException("no LoRA target modules");
        GeneratorOptional gen = Native.keep(new GeneratorOptional(createCPUGenerator(seed)));
        try (PointerScope scope = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
            TensorOptions f32 = new TensorOptions(ScalarType.Float);
            for (Map.Entry<String, Linear> e : model.linears().entrySet()) {
                String name = e.getKey();
                if (targets.stream().noneMatch(t -> name.equals(t) || name.endsWith("." + t))) continue;
                Linear l = e.getValue();
                String ka = name + ".lora_A.weight", kb = name + ".lora_B.weight";
                Tensor a = (initial != null && initial.containsKey(ka) ? initial.get(ka).to(ScalarType.Float).clone()
                        : randn(new long[] {r, l.inFeatures()}, gen, f32).div(new org.bytedeco.pytorch.Scalar((double) r))).to(dtype.scalarType());
                Tensor b = (initial != null && initial.containsKey(kb) ? initial.get(kb).to(ScalarType.Float).clone()
                        : zeros(new long[] {l.outFeatures(), r}, f32)).to(dtype.scalarType());
                if (a.size(0) != r || b.size(1) != r) throw new ModelFormatException(ka + ": rank " + a.size(0) + ", expected " + r);
                Tensor la = Native.keep(a.detach().requires_grad_(true)), lb = Native.keep(b.detach().requires_grad_(true));
                lora.put(ka, la);
                lora.put(kb, lb);
                l.attachLora(la, lb, alpha / r);
                loraModules.add(name);
            }
        } finally {
            Native.release(gen);
        }
        if (loraModules.isEmpty()) throw new IllegalArgumentException("LoRA targets " + targets + " match no Linear of the model");
        for (Tensor t : base.values()) t.requires_grad_(false);
        trainable.clear();
        trainable.putAll(lora);
        loraRank = r;
        loraScale = alpha / r;
    }

    public FluxConfig config() { return config; }

    public DType dtype() { return dtype; }

    /** The model; its forward with gradients is {@link FluxTransformer#forwardWithGrad}. Owned by this object. */
    public FluxTransformer model() { return model; }

    /** The tensors the optimizer updates, by name (unmodifiable; owned here). */
    public Map<String, Tensor> trainable() { return Collections.unmodifiableMap(trainable); }

    /** Every base parameter by diffusers name (unmodifiable; owned here). */
    public Map<String, Tensor> base() { return Collections.unmodifiableMap(base); }

    /** The LoRA matrices ({@code <module>.lora_A.weight}, ...), empty for a full fine-tune. */
    public Map<String, Tensor> lora() { return Collections.unmodifiableMap(lora); }

    public boolean isLora() { return !lora.isEmpty(); }

    /** Copies {@code values} (by name, same shapes) into the trainable tensors without recording gradients. */
    public void load(Map<String, Tensor> values, String origin) {
        try (PointerScope scope = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
            for (Map.Entry<String, Tensor> e : trainable.entrySet()) {
                Tensor v = values.get(e.getKey());
                if (v == null) throw new ModelFormatException(origin + ": missing tensor '" + e.getKey() + "'");
                if (!java.util.Arrays.equals(Tensors.shape(v), Tensors.shape(e.getValue()))) {
                    throw new ModelFormatException(origin + ": tensor '" + e.getKey() + "' has shape " + java.util.Arrays.toString(Tensors.shape(v))
                            + ", expected " + java.util.Arrays.toString(Tensors.shape(e.getValue())));
                }
            }
            for (Map.Entry<String, Tensor> e : trainable.entrySet()) e.getValue().copy_(values.get(e.getKey()));
        }
    }

    /**
     * Writes the model as a diffusers {@code transformer/} folder ({@code config.json} + {@code diffusion_pytorch_model.safetensors},
     * fp32) into {@code dir}, or, for a LoRA, {@code pytorch_lora_weights.safetensors} in diffusers/PEFT naming
     * ({@code transformer.<module>.lora_A.weight}, {@code .alpha} per module; what {@code --lora} loads), rank and alpha also in its metadata.
     * {@code values} replaces the trainable tensors (e.g. an EMA); null writes the current ones.
     */
    public void save(Path dir, Map<String, Tensor> values, Map<String, String> metadata) throws IOException {
        Files.createDirectories(dir);
        Map<String, String> meta = new LinkedHashMap<>(metadata);
        meta.put("format", "pt");
        try (PointerScope scope = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
            if (isLora()) {
                Map<String, Tensor> m = new LinkedHashMap<>();
                for (String k : lora.keySet()) m.put("transformer." + k, (values != null ? values.get(k) : lora.get(k)).detach().contiguous());
                for (String module : loraModules) { // alpha per module, as the inference path's LoRA reader takes it (no alpha would mean alpha = r)
                    m.put("transformer." + module + ".alpha", org.bytedeco.pytorch.global.torch.scalar_tensor(new org.bytedeco.pytorch.Scalar(loraScale * loraRank),
                            new org.bytedeco.pytorch.TensorOptions(ScalarType.Float)));
                }
                meta.put("lora_rank", String.valueOf(loraRank));
                meta.put("lora_alpha", String.valueOf(loraScale * loraRank));
                SafetensorsWriter.write(dir.resolve("pytorch_lora_weights.safetensors"), m, meta);
            } else {
                Map<String, Tensor> m = new LinkedHashMap<>();
                for (Map.Entry<String, Tensor> e : base.entrySet()) {
                    Tensor v = values != null && values.containsKey(e.getKey()) ? values.get(e.getKey()) : e.getValue();
                    m.put(e.getKey(), v.detach().contiguous());
                }
                SafetensorsWriter.write(dir.resolve("diffusion_pytorch_model.safetensors"), m, meta);
                Files.writeString(dir.resolve("config.json"), config.toDiffusersConfigJson());
            }
        }
    }

    /** Reads what {@link #save} wrote in {@code dir} (the trainable tensors, by their trainable names). Owned by the caller. */
    public Map<String, Tensor> read(Path dir) {
        Path f = dir.resolve(isLora() ? "pytorch_lora_weights.safetensors" : "diffusion_pytorch_model.safetensors");
        if (!Files.isRegularFile(f)) throw new ModelFormatException(f + ": missing");
        Map<String, Tensor> m = new LinkedHashMap<>();
        try (SafetensorsFile sf = SafetensorsFile.open(f)) {
            for (String k : sf.keys()) {
                if (k.endsWith(".alpha")) continue;
                String name = isLora() && k.startsWith("transformer.") ? k.substring("transformer.".length()) : k;
                try (PointerScope scope = new PointerScope()) {
                    m.put(name, Tensors.keep(sf.load(k).to(ScalarType.Float).clone()));
                }
            }
        } catch (RuntimeException e) {
            m.values().forEach(Native::release);
            throw e instanceof ModelFormatException ? e : new ModelFormatException(f + ": cannot read: " + e.getMessage(), e);
        }
        return m;
    }

    @Override
    public void close() {
        for (String m : loraModules) model.linears().get(m).attachLora(null, null, 0);
        model.close();
        base.values().forEach(Native::release);
        lora.values().forEach(Native::release);
    }
}
