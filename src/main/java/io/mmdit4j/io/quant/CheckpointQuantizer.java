package io.mmdit4j.io.quant;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.io.TensorInfo;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.io.gguf.GgufQuantizer;
import io.mmdit4j.io.gguf.GgufType;
import io.mmdit4j.io.gguf.GgufWriter;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

import static org.bytedeco.pytorch.global.torch.bucketize;
import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.zeros;

/**
 * Writes a checkpoint (any file or folder {@link WeightFiles} opens, quantized or not) in a quantized format, tensor by
 * tensor (a model larger than memory converts), keeping tensor names:
 * <ul>
 * <li><b>GGUF</b> ({@code q8_0}, {@code q4_0}, {@code q4_1}, {@code q5_0}, {@code q5_1}, {@code q4_k}, {@code q5_k},
 * {@code q6_k}) as city96's convert.py + llama-quantize lay it out: 2-D {@code .weight} tensors quantized with ggml's
 * reference quantizers, except the embedders and the final layer ({@link #KEPT}); a tensor whose rows are not whole
 * blocks, and every other tensor of more than 1024 elements with at least two dimensions, F16 (BF16 from a bf16 source);
 * 1-D and small tensors F32 (from the golden F16 file this gives llama-quantize's Q8_0 file byte for byte, KVs
 * {@code general.architecture}, {@code general.quantization_version} 2, {@code general.file_type} included);</li>
 * <li><b>bitsandbytes 4-bit</b> ({@code nf4}, {@code fp4}) as diffusers saves it: every 2-D {@code .weight} (diffusers
 * quantizes every Linear), blocks of 64, optional double quantization, the quant_state JSON; a folder with a
 * {@code config.json} gets a folder with {@code quantization_config} added;</li>
 * <li><b>fp8</b> ({@code fp8} = e4m3fn, {@code fp8-e5m2}: every 2-D {@code .weight}; {@code fp8-scaled}: ComfyUI's scaled
 * e4m3fn of the block Linears, {@code scale_weight = max|w| / 448}, the {@code scaled_fp8} marker).</li>
 * </ul>
 * A diffusers folder (with {@code config.json}) written to an output without a file extension gives a folder: its config
 * and {@code diffusion_pytorch_model.gguf} / {@code .safetensors}. The result loads in this engine like the original; the
 * GGUF files in ComfyUI-GGUF when the names are the original (BFL / Stability / HunyuanVideo) ones.
 */
public final class CheckpointQuantizer {
    private CheckpointQuantizer() {}

    /** Tensors that llama-quantize (ComfyUI-GGUF's patch) leaves unquantized: embedders and the final layer. */
    static final String[] KEPT = {"img_in.", "txt_in.", "time_in.", "vector_in.", "guidance_in.", "final_layer.", "x_embedder.",
            "t_embedder.", "y_embedder.", "context_embedder.", "pos_embed", "time_text_embed.", "norm_out.", "proj_out."};
    private static final String PREFIX = "model.diffusion_model.";
    /** The diffusers parts of a double block's fused {@code img_attn.qkv} / {@code txt_attn.qkv} (dry runs name them so). */
    private static final java.util.regex.Pattern DIFFUSERS_QKV =
            java.util.regex.Pattern.compile("(^|\\.)transformer_blocks\\.\\d+\\.attn\\.(to_q|to_k|to_v|add_q_proj|add_k_proj|add_v_proj)\\.weight$");

    /** The output formats. */
    public enum Target {
        Q8_0(GgufType.Q8_0, 7), Q4_0(GgufType.Q4_0, 2), Q4_1(GgufType.Q4_1, 3), Q5_0(GgufType.Q5_0, 8), Q5_1(GgufType.Q5_1, 9),
        Q4_K(GgufType.Q4_K, 14), Q4_K_M(GgufType.Q4_K, 15), Q5_K(GgufType.Q5_K, 16), Q5_K_M(GgufType.Q5_K, 17), Q6_K(GgufType.Q6_K, 18),
        NF4(null, 0), FP4(null, 0), FP8(null, 0), FP8_SCALED(null, 0), FP8_E5M2(null, 0);

        final GgufType gguf;
        final int fileType; // llama.cpp ftype

        Target(GgufType gguf, int fileType) {
            this.gguf = gguf;
            this.fileType = fileType;
        }

        public boolean gguf() { return gguf != null; }

        /**
         * The GGUF type of a quantized tensor: the target's, except that the _M mixes give the fused attention projections
         * ({@code *attn.qkv.weight}) one type more (Q4_K_M: Q5_K, Q5_K_M: Q6_K), as ComfyUI-GGUF's llama-quantize does.
         */
        GgufType typeOf(String name) {
            if (name.endsWith("attn.qkv.weight") || DIFFUSERS_QKV.matcher(name).find()) {
                if (this == Q4_K_M) return GgufType.Q5_K;
                if (this == Q5_K_M) return GgufType.Q6_K;
            }
            return gguf;
        }
        public boolean bnb() { return this == NF4 || this == FP4; }
        public boolean fp8() { return name().startsWith("FP8"); }

        /** {@code q8_0}, {@code q4_k}, {@code nf4}, {@code fp8}, {@code fp8-scaled}, ... (case-insensitive). */
        public static Target parse(String s) {
            String n = s.toUpperCase(Locale.ROOT).replace('-', '_');
            if (n.equals("Q4_K_S")) n = "Q4_K";
            if (n.equals("Q5_K_S")) n = "Q5_K";
            if (n.equals("FP8_E4M3FN") || n.equals("FP8_E4M3")) n = "FP8";
            for (Target t : values()) if (t.name().equals(n)) return t;
            throw new IllegalArgumentException("unknown quantization type '" + s + "' (expected q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q4_k_m, q5_k, q5_k_m, q6_k, "
                    + "nf4, fp4, fp8, fp8-scaled or fp8-e5m2)");
        }

        /** The default output file name's suffix ({@code .gguf} or {@code .safetensors}). */
        public String extension() {
            return gguf() ? ".gguf" : ".safetensors";
        }
    }

    /** What was written: tensors per stored format, and the bytes in and out. */
    public record Report(Path out, Map<String, Integer> formats, long bytesIn, long bytesOut) {
        public String summary() {
            return String.format(Locale.ROOT, "%s: %s; %.1f MB -> %.1f MB", out, formats, bytesIn / 1e6, bytesOut / 1e6);
        }
    }

    /** Options: bitsandbytes double quantization and state dtype, the GGUF architecture name (null: detected). */
    public record Options(boolean doubleQuant, DType bnbDtype, String architecture) {
        public static Options defaults() {
            return new Options(true, DType.BF16, null);
        }
    }

    /**
     * Writes {@code model} (a checkpoint file, a component folder, or a model folder with {@code transformer/}) as
     * {@code target} to {@code out}: a file (.gguf / .safetensors); a folder (config.json + weights) from a component
     * folder; from a model folder, a model folder whose other components are links to the original's.
     */
    public static Report quantize(Path model, Target target, Path out, Options o) {
        Torch.init();
        boolean modelFolder = Files.isDirectory(model) && !Files.exists(model.resolve("config.json")) && Files.isDirectory(model.resolve("transformer"));
        Path weights = modelFolder ? model.resolve("transformer") : model;
        if (modelFolder && !out.toString().endsWith(".safetensors") && !out.toString().endsWith(".gguf")
                && Files.isRegularFile(weights.resolve("config.json"))) {
            out = linkedModelFolder(model, out);
        }
        try (TensorSource src = WeightFiles.open(weights)) {
            Path config = Files.isDirectory(weights) ? weights.resolve("config.json") : null;
            Path file = out;
            if (config != null && Files.isRegularFile(config) && !out.toString().endsWith(".safetensors") && !out.toString().endsWith(".gguf")) {
                // a diffusers folder in, a diffusers folder out: its config (bitsandbytes: with quantization_config) and the weights
                file = out.resolve("diffusion_pytorch_model" + target.extension());
                writeConfig(config, out.resolve("config.json"), target, o);
            }
            if (target.gguf()) return gguf(src, target, file, o.architecture() != null ? o.architecture() : architecture(src.keys()));
            return safetensors(src, target, file, o);
        }
    }

    /**
     * A model folder in, a model folder out: {@code out} gets symbolic links to every entry of {@code model} but
     * {@code transformer/} (text encoders, VAE, scheduler, {@code model_index.json} stay where they are), and the
     * quantized transformer is written to {@code out/transformer}, which is returned; the folder then loads like the original.
     */
    private static Path linkedModelFolder(Path model, Path out) {
        try {
            Files.createDirectories(out);
            try (java.util.stream.Stream<Path> entries = Files.list(model)) {
                for (Path e : (Iterable<Path>) entries.sorted()::iterator) {
                    String name = e.getFileName().toString();
                    if (name.equals("transformer")) continue;
                    Path link = out.resolve(name);
                    if (Files.exists(link, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                        if (Files.isSymbolicLink(link) && Files.isSameFile(link, e)) continue;
                        throw new IllegalArgumentException(link + " exists and is not a link to " + e + ": give a new output folder");
                    }
                    Files.createSymbolicLink(link, e.toAbsolutePath());
                }
            }
            return out.resolve("transformer");
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot write the model folder " + out + ": " + e.getMessage(), e);
        }
    }

    /** The GGUF {@code general.architecture} of these tensor names: flux, sd3, hyvid (HunyuanVideo), cosmos, hidream. */
    public static String architecture(java.util.Collection<String> keys) {
        boolean sd3 = false, hyvid = false, flux = false, cosmos = false, hidream = false;
        for (String key : keys) {
            String k = key.startsWith(PREFIX) ? key.substring(PREFIX.length()) : key;
            if (k.startsWith("joint_blocks.") || k.equals("pos_embed.pos_embed") || k.equals("pos_embed")) sd3 = true;
            if (k.startsWith("img_in.proj.") || k.contains("token_refiner")) hyvid = true;
            if (k.startsWith("double_blocks.") || k.startsWith("single_transformer_blocks.")) flux = true;
            if (k.startsWith("time_embed.t_embedder.") || k.startsWith("transformer_blocks.") && k.contains(".norm1.linear_1.")) cosmos = true; // diffusers' CosmosTransformer3DModel
            if (k.startsWith("double_stream_blocks.") || k.startsWith("caption_projection.")) hidream = true;
        }
        if (hidream) return "hidream";
        if (hyvid) return "hyvid";
        if (sd3) return "sd3";
        if (cosmos) return "cosmos";
        if (flux) return "flux";
        throw new ModelFormatException("cannot tell the model's architecture from its tensor names (give it explicitly)");
    }

    /**
     * The meta-device quantized data (shapes only) that a checkpoint written as {@code target} would hold for the tensor
     * {@code name} of {@code shape}, or null when the writer keeps that tensor plain: what real-size dry runs of quantized
     * models take ({@link io.mmdit4j.io.StateDict#quantizedAs}).
     */
    public static QuantizedTensor meta(Target target, String name, long[] shape) {
        if (!quantizable(name, shape, target.gguf() || target == Target.FP8_SCALED)) return null;
        if (target.gguf()) {
            GgufType t = target.typeOf(name);
            return shape[1] % t.blockElements() == 0 ? io.mmdit4j.io.gguf.GgufTensor.meta(t, shape) : null;
        }
        if (target.bnb()) return Bnb4Tensor.meta(shape, new Bnb4Tensor.State(target.name().toLowerCase(Locale.ROOT), 64, ScalarType.BFloat16, 256, 0f));
        return Fp8Tensor.meta(shape, target == Target.FP8_E5M2 ? DType.F8_E5M2 : DType.F8_E4M3, target == Target.FP8_SCALED);
    }

    private static boolean quantizable(String name, long[] shape, boolean skipKept) {
        if (!name.endsWith(".weight") || shape.length != 2) return false;
        if (!skipKept) return true;
        String k = name.startsWith(PREFIX) ? name.substring(PREFIX.length()) : name;
        for (String p : KEPT) if (k.startsWith(p)) return false;
        return true;
    }

    // ------------------------------------------------------------------ GGUF

    private static Report gguf(TensorSource src, Target target, Path out, String arch) {
        Map<String, GgufWriter.Kv> kv = new LinkedHashMap<>();
        kv.put("general.architecture", GgufWriter.Kv.string(arch));
        kv.put("general.quantization_version", GgufWriter.Kv.u32(2));
        kv.put("general.file_type", GgufWriter.Kv.u32(target.fileType));
        List<GgufWriter.Spec> specs = new ArrayList<>();
        Map<String, Integer> formats = new TreeMap<>();
        long in = 0;
        for (String k : src.keys()) {
            TensorInfo i = src.info(k);
            in += i.byteLength();
            GgufType type;
            long[] shape = i.shape().length == 0 ? new long[] {1} : i.shape();
            GgufType q = target.typeOf(k);
            if (quantizable(k, shape, true) && shape[1] % q.blockElements() == 0) type = q;
            else if (quantizable(k, shape, true) && i.numel() > 1024) type = GgufType.F16; // llama-quantize's fallback for rows of partial blocks
            else if (shape.length == 1 || i.numel() <= 1024) type = GgufType.F32;
            else type = i.dtype() == DType.BF16 ? GgufType.BF16 : GgufType.F16;
            specs.add(new GgufWriter.Spec(k, type, shape));
            formats.merge(type.name(), 1, Integer::sum);
        }
        GgufWriter.write(out, kv, specs, s -> ggufData(src, s));
        return new Report(out, formats, in, size(out));
    }

    private static Tensor ggufData(TensorSource src, GgufWriter.Spec s) {
        try (PointerScope scope = new PointerScope(); Tensor loaded = src.load(s.name())) {
            Tensor t = loaded.reshape(s.shape());
            if (s.type().dtype() != null) return Tensors.keep(t.to(s.type().dtype().scalarType()).contiguous());
            float[] x = Tensors.toFloats(t);
            byte[] q = new byte[(int) s.type().bytes(x.length)];
            GgufQuantizer.quantize(s.type(), x, 0, x.length, q, 0);
            return Tensors.keep(bytes(q));
        }
    }

    // ------------------------------------------------------------------ safetensors (bitsandbytes, fp8)

    private static Report safetensors(TensorSource src, Target target, Path file, Options o) {
        Map<String, SafetensorsWriter.Spec> specs = new TreeMap<>();
        Map<String, String> producer = new LinkedHashMap<>(); // output key -> source key
        Map<String, Integer> formats = new TreeMap<>();
        long in = 0;
        for (String k : src.keys()) {
            TensorInfo i = src.info(k);
            in += i.byteLength();
            DType keep = i.dtype().isFp8() || i.quantized() ? DType.BF16 : i.dtype();
            boolean q = quantizable(k, i.shape(), target == Target.FP8_SCALED);
            if (q && target.bnb()) {
                long n = i.numel(), blocks = (n + 63) / 64;
                specs.put(k, new SafetensorsWriter.Spec(DType.U8, new long[] {(n + 1) / 2, 1}));
                specs.put(k + ".quant_map", new SafetensorsWriter.Spec(DType.F32, new long[] {16}));
                if (o.doubleQuant()) {
                    specs.put(k + ".absmax", new SafetensorsWriter.Spec(DType.U8, new long[] {blocks}));
                    specs.put(k + ".nested_absmax", new SafetensorsWriter.Spec(DType.F32, new long[] {(blocks + 255) / 256}));
                    specs.put(k + ".nested_quant_map", new SafetensorsWriter.Spec(DType.F32, new long[] {256}));
                } else {
                    specs.put(k + ".absmax", new SafetensorsWriter.Spec(DType.F32, new long[] {blocks}));
                }
                String json = stateJson(target, i.shape(), o, 0f);
                specs.put(k + stateKey(target), new SafetensorsWriter.Spec(DType.U8, new long[] {json.getBytes(StandardCharsets.UTF_8).length + 16}));
                formats.merge(target.name(), 1, Integer::sum);
            } else if (q && target.fp8()) {
                specs.put(k, new SafetensorsWriter.Spec(target == Target.FP8_E5M2 ? DType.F8_E5M2 : DType.F8_E4M3, i.shape()));
                if (target == Target.FP8_SCALED) specs.put(k.substring(0, k.length() - ".weight".length()) + ".scale_weight", new SafetensorsWriter.Spec(DType.F32, new long[0]));
                formats.merge(target == Target.FP8_E5M2 ? "F8_E5M2" : "F8_E4M3", 1, Integer::sum);
            } else {
                specs.put(k, new SafetensorsWriter.Spec(keep, i.shape()));
                formats.merge(keep.safetensorsName(), 1, Integer::sum);
                producer.put(k, k);
            }
        }
        if (target == Target.FP8_SCALED) specs.put("scaled_fp8", new SafetensorsWriter.Spec(DType.F8_E4M3, new long[] {0}));
        Map<String, Tensor> pending = new TreeMap<>(); // a bitsandbytes group's tensors, made together, handed out one by one
        SafetensorsWriter.write(file, specs, Map.of("format", "pt"), name -> {
            Tensor ready = pending.remove(name);
            if (ready != null) return ready;
            if (name.equals("scaled_fp8")) return empty(new long[] {0}, new TensorOptions(ScalarType.Float8_e4m3fn), new MemoryFormatOptional());
            String k = producer.get(name);
            if (k != null) {
                try (PointerScope scope = new PointerScope(); Tensor t = src.load(k)) {
                    return Tensors.keep(t.to(specs.get(k).dtype().scalarType()).contiguous());
                }
            }
            if (target.bnb()) {
                String w = name.substring(0, name.indexOf(".weight") + ".weight".length());
                bnbGroup(src, w, target, o, specs).forEach(pending::put);
                return pending.remove(name);
            }
            String w = name.endsWith(".scale_weight") ? name.substring(0, name.length() - ".scale_weight".length()) + ".weight" : name;
            fp8(src, w, target).forEach(pending::put);
            return pending.remove(name);
        });
        pending.values().forEach(io.mmdit4j.runtime.Native::release);
        return new Report(file, formats, in, size(file));
    }

    private static String stateKey(Target t) {
        return ".quant_state.bitsandbytes__" + t.name().toLowerCase(Locale.ROOT);
    }

    /** The quant_state JSON, padded with spaces to the length its spec announced (the offset's digits vary). */
    private static String stateJson(Target t, long[] shape, Options o, float offset) {
        ObjectNode n = new ObjectMapper().createObjectNode();
        n.put("quant_type", t.name().toLowerCase(Locale.ROOT));
        n.put("blocksize", 64);
        n.put("dtype", o.bnbDtype().torchName());
        n.putArray("shape").add(shape[0]).add(shape[1]);
        if (o.doubleQuant()) {
            n.put("nested_blocksize", 256);
            n.put("nested_dtype", "float32");
            n.put("nested_offset", offset);
        }
        return n.toString();
    }

    /** NF4 and FP4 code tables (bitsandbytes'), code order. */
    static final float[] NF4 = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
            -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f,
            0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};
    static final float[] FP4 = fp4();

    private static float[] fp4() {
        float[] pos = {0f, 0.0625f, 8f, 12f, 4f, 6f, 2f, 3f};
        float[] t = new float[16];
        for (int i = 0; i < 8; i++) {
            t[i] = pos[i] / 12f;
            t[i + 8] = -pos[i] / 12f;
        }
        return t;
    }

    /** The nearest code of every value of {@code x} (fp32, in [-1, 1]) in {@code table}: int64 codes. */
    private static Tensor nearest(Tensor x, float[] table) {
        Integer[] order = new Integer[table.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        java.util.Arrays.sort(order, (a, b) -> Float.compare(table[a], table[b]));
        float[] mid = new float[table.length - 1];
        long[] codeOf = new long[table.length];
        for (int i = 0; i < table.length; i++) codeOf[i] = order[i];
        for (int i = 0; i + 1 < table.length; i++) mid[i] = (table[order[i]] + table[order[i + 1]]) / 2;
        Tensor rank = bucketize(x, Tensors.fromFloats(mid, mid.length));
        return longs(codeOf).index_select(0, rank.view(-1)).view(Tensors.shape(x));
    }

    private static Map<String, Tensor> bnbGroup(TensorSource src, String w, Target target, Options o, Map<String, SafetensorsWriter.Spec> specs) {
        float[] table = target == Target.NF4 ? NF4 : FP4;
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (PointerScope scope = new PointerScope(); Tensor loaded = src.load(w)) {
            Tensor x = loaded.to(o.bnbDtype().scalarType()).to(ScalarType.Float).reshape(-1); // diffusers casts to torch_dtype first
            long n = x.numel(), blocks = (n + 63) / 64;
            Tensor padded = n % 64 == 0 ? x : cat(new TensorVector(x, zeros(new long[] {blocks * 64 - n}, new TensorOptions(ScalarType.Float))), 0);
            Tensor b = padded.view(blocks, 64);
            Tensor absmax = b.abs().amax(new long[] {1}, false);
            Tensor scaled = b.div(absmax.clamp_min(new Scalar(Float.MIN_NORMAL)).unsqueeze(1));
            Tensor codes = nearest(scaled, table).view(-1).narrow(0, 0, n);
            if (n % 2 == 1) codes = cat(new TensorVector(codes, nearest(zeros(new long[] {1}, new TensorOptions(ScalarType.Float)), table)), 0);
            Tensor pairs = codes.view(-1, 2);
            Tensor packed = pairs.select(1, 0).bitwise_left_shift(new Scalar(4)).bitwise_or(pairs.select(1, 1)).to(ScalarType.Byte).view(-1, 1);
            out.put(w, Tensors.keep(packed.contiguous()));
            out.put(w + ".quant_map", Tensors.keep(Tensors.fromFloats(table, 16)));
            float offset = 0;
            if (o.doubleQuant()) {
                offset = absmax.mean().item_float();
                Tensor centred = absmax.sub(new Scalar(offset));
                long groups = (blocks + 255) / 256;
                Tensor cp = groups * 256 == blocks ? centred : cat(new TensorVector(centred, zeros(new long[] {groups * 256 - blocks}, new TensorOptions(ScalarType.Float))), 0);
                Tensor g = cp.view(groups, 256);
                Tensor nestedAbs = g.abs().amax(new long[] {1}, false);
                float[] dyn = dynamicMap();
                Tensor nc = nearest(g.div(nestedAbs.clamp_min(new Scalar(Float.MIN_NORMAL)).unsqueeze(1)), dyn).view(-1).narrow(0, 0, blocks).to(ScalarType.Byte);
                out.put(w + ".absmax", Tensors.keep(nc.contiguous()));
                out.put(w + ".nested_absmax", Tensors.keep(nestedAbs.contiguous()));
                out.put(w + ".nested_quant_map", Tensors.keep(Tensors.fromFloats(dyn, 256)));
            } else {
                out.put(w + ".absmax", Tensors.keep(absmax.contiguous()));
            }
            String key = w + stateKey(target);
            long length = specs.get(key).shape()[0];
            String json = stateJson(target, src.info(w).shape(), o, offset);
            byte[] j = (json + " ".repeat((int) Math.max(0, length - json.getBytes(StandardCharsets.UTF_8).length))).getBytes(StandardCharsets.UTF_8);
            if (j.length != length) throw new IllegalStateException(key + ": quant_state of " + j.length + " bytes, announced " + length);
            out.put(key, Tensors.keep(bytes(j)));
        }
        return out;
    }

    /** bitsandbytes' {@code create_dynamic_map(signed=True)}: the 8-bit table of double quantization. */
    static float[] dynamicMap() {
        List<Float> data = new ArrayList<>();
        int maxExp = 7, nonSign = 7;
        for (int i = 0; i < maxExp; i++) {
            int items = (int) Math.pow(2, i + nonSign - maxExp) + 1;
            float[] bounds = linspace(0.1f, 1f, items);
            float p = (float) Math.pow(10, -(maxExp - 1) + i); // a Python float times a float32 tensor: float32 arithmetic
            for (int k = 0; k + 1 < bounds.length; k++) {
                float mean = (bounds[k] + bounds[k + 1]) / 2.0f;
                data.add(p * mean);
                data.add(-p * mean);
            }
        }
        data.add(0f);
        data.add(1.0f);
        while (data.size() < 256) data.add(0f);
        float[] out = new float[256];
        for (int i = 0; i < 256; i++) out[i] = data.get(i);
        java.util.Arrays.sort(out);
        return out;
    }

    /** torch.linspace in float32 on the CPU: from the start below the halfway point, from the end above it. */
    private static float[] linspace(float a, float b, int n) {
        float[] out = new float[n];
        if (n == 1) {
            out[0] = a;
            return out;
        }
        float step = (b - a) / (float) (n - 1);
        for (int i = 0; i < n; i++) out[i] = i < n / 2 ? a + step * i : b - step * (n - i - 1);
        return out;
    }

    private static Map<String, Tensor> fp8(TensorSource src, String w, Target target) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        Fp8.Format f = target == Target.FP8_E5M2 ? Fp8.Format.E5M2 : Fp8.Format.E4M3FN;
        try (PointerScope scope = new PointerScope(); Tensor loaded = src.load(w)) {
            Tensor x = loaded.to(ScalarType.Float);
            if (target == Target.FP8_SCALED) {
                float scale = x.abs().max().item_float() / 448f;
                if (scale == 0) scale = 1;
                Tensor s = Tensors.fromFloats(new float[] {scale}).reshape(new long[0]);
                x = x.div(s);
                out.put(w.substring(0, w.length() - ".weight".length()) + ".scale_weight", Tensors.keep(s));
            }
            out.put(w, Tensors.keep(x.clamp(new org.bytedeco.pytorch.ScalarOptional(new Scalar(-f.max())),
                    new org.bytedeco.pytorch.ScalarOptional(new Scalar(f.max()))).to(f.dtype().scalarType()).contiguous()));
        }
        return out;
    }

    private static void writeConfig(Path config, Path out, Target target, Options o) {
        ObjectNode c = (ObjectNode) JsonConfigs.readObject(config, "config");
        ObjectNode q = c.putObject("quantization_config");
        q.put("quant_method", "bitsandbytes");
        q.put("_load_in_4bit", target.bnb());
        q.put("_load_in_8bit", false);
        q.put("load_in_4bit", target.bnb());
        q.put("load_in_8bit", false);
        q.put("bnb_4bit_quant_type", target.name().toLowerCase(Locale.ROOT));
        q.put("bnb_4bit_use_double_quant", o.doubleQuant());
        q.put("bnb_4bit_compute_dtype", o.bnbDtype().torchName());
        q.put("bnb_4bit_quant_storage", "uint8");
        q.put("llm_int8_threshold", 6.0);
        q.putNull("llm_int8_skip_modules");
        q.put("llm_int8_enable_fp32_cpu_offload", false);
        q.put("llm_int8_has_fp16_weight", false);
        if (!target.bnb()) c.remove("quantization_config");
        try {
            Files.createDirectories(out.getParent());
            Files.writeString(out, new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(c));
        } catch (IOException e) {
            throw new ModelFormatException(out + ": cannot write: " + e.getMessage(), e);
        }
    }

    private static Tensor bytes(byte[] b) {
        Tensor t = empty(new long[] {b.length}, new TensorOptions(ScalarType.Byte), new MemoryFormatOptional());
        if (b.length > 0) new BytePointer(t.data_ptr()).put(b);
        return t;
    }

    private static Tensor longs(long[] v) {
        Tensor t = empty(new long[] {v.length}, new TensorOptions(ScalarType.Long), new MemoryFormatOptional());
        new org.bytedeco.javacpp.LongPointer(t.data_ptr()).put(v);
        return t;
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return -1;
        }
    }
}
