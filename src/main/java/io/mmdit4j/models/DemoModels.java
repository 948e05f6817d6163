package io.mmdit4j.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.cosmos.CosmosConfig;
import io.mmdit4j.cosmos.CosmosTransformer;
import io.mmdit4j.cosmos.PooledClipAdapter;
import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.hidream.HiDreamConfig;
import io.mmdit4j.hidream.HiDreamTransformer;
import io.mmdit4j.hunyuan.HunyuanVideoConfig;
import io.mmdit4j.hunyuan.HunyuanVideoParameters;
import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo;
import io.mmdit4j.hunyuan.vae.HunyuanVideoVaeConfig;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.ParameterShapes;
import io.mmdit4j.io.RandomWeights;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.vae.AutoencoderKL;
import io.mmdit4j.vae.VaeConfig;
import io.mmdit4j.vae.wan.AutoencoderKLWan;
import io.mmdit4j.vae.wan.WanVaeConfig;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Writes a generated demo model as a real diffusers FLUX folder: {@code model_index.json}, {@code scheduler/},
 * random {@code transformer/}, {@code text_encoder/} (CLIP), {@code text_encoder_2/} (T5) and {@code vae/}
 * from the descriptor's configs, and the real tokenizer files from {@code models/tokenizers/}. Deterministic:
 * the same descriptor gives the same bytes. Written into a temporary folder and moved into place.
 */
public final class DemoModels {
    /**
     * The generated folders' format, in their {@code model_index.json}: 2 = the video VAEs carry their encoders (image-to-image).
     * A cached folder of another format is written again ({@link #isCurrent}).
     */
    public static final int FORMAT = 2;

    /** Whether a generated demo folder was written in the current {@link #FORMAT}. */
    public static boolean isCurrent(Path root) {
        try {
            return JSON.readTree(root.resolve("model_index.json").toFile()).path("_mmdit4j_demo_format").asInt(1) == FORMAT;
        } catch (IOException e) {
            return false;
        }
    }

    private DemoModels() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    /** A generated FLUX demo folder (see the class comment). */
    public static void writeFlux(ModelDescriptor d, Path root, Path tokenizers) throws IOException {
        writeFolder(d, root, tokenizers, List.of("clip/vocab.json", "t5/spiece.model"), "FluxPipeline", new String[][] {
                {"scheduler", "diffusers", "FlowMatchEulerDiscreteScheduler"},
                {"text_encoder", "transformers", "CLIPTextModel"}, {"text_encoder_2", "transformers", "T5EncoderModel"},
                {"tokenizer", "transformers", "CLIPTokenizer"}, {"tokenizer_2", "transformers", "T5Tokenizer"},
                {"transformer", "diffusers", "FluxTransformer2DModel"}, {"vae", "diffusers", "AutoencoderKL"}},
                (tmp, g, seed, dtype) -> {
                    json(tmp.resolve("transformer/config.json"), g.get("transformer"));
                    FluxConfig fc = FluxConfig.fromDiffusersConfig(tmp.resolve("transformer/config.json"));
                    weights(tmp.resolve("transformer/diffusion_pytorch_model.safetensors"), FluxTransformer.randomWeights(fc, seed, dtype), d);
                    component(tmp, "text_encoder", "model.safetensors", g.get("text_encoder"), clipShapes(g.get("text_encoder")), seed + 1, dtype, d);
                    component(tmp, "text_encoder_2", "model.safetensors", g.get("text_encoder_2"), t5Shapes(g.get("text_encoder_2")), seed + 2, dtype, d);
                    component(tmp, "vae", "diffusion_pytorch_model.safetensors", g.get("vae"), vaeShapes(g.get("vae")), seed + 3, dtype, d);
                    copyDir(tokenizers.resolve("clip"), tmp.resolve("tokenizer"));
                    copyDir(tokenizers.resolve("t5"), tmp.resolve("tokenizer_2"));
                });
    }

    /**
     * A generated HunyuanVideo demo folder: random {@code transformer/}, {@code vae/} (decoder and encoder), {@code text_encoder/}
     * (Llama) and {@code text_encoder_2/} (CLIP-L) from the descriptor's configs, a small byte-level Llama-3-style
     * tokenizer ({@code tokenizers/llama-demo}, ids fitting the demo Llama) and the real CLIP tokenizer.
     */
    public static void writeHunyuanVideo(ModelDescriptor d, Path root, Path tokenizers) throws IOException {
        writeFolder(d, root, tokenizers, List.of("clip/vocab.json", "llama-demo/tokenizer.json"), "HunyuanVideoPipeline", new String[][] {
                {"scheduler", "diffusers", "FlowMatchEulerDiscreteScheduler"},
                {"text_encoder", "transformers", "LlamaModel"}, {"text_encoder_2", "transformers", "CLIPTextModel"},
                {"tokenizer", "transformers", "LlamaTokenizerFast"}, {"tokenizer_2", "transformers", "CLIPTokenizer"},
                {"transformer", "diffusers", "HunyuanVideoTransformer3DModel"}, {"vae", "diffusers", "AutoencoderKLHunyuanVideo"}},
                (tmp, g, seed, dtype) -> {
                    json(tmp.resolve("transformer/config.json"), g.get("transformer"));
                    HunyuanVideoConfig hc = HunyuanVideoConfig.fromDiffusersConfig(tmp.resolve("transformer/config.json"));
                    weights(tmp.resolve("transformer/diffusion_pytorch_model.safetensors"),
                            RandomWeights.generate(HunyuanVideoParameters.shapes(hc), seed, dtype), d);
                    json(tmp.resolve("vae/config.json"), g.get("vae"));
                    HunyuanVideoVaeConfig vc = HunyuanVideoVaeConfig.read(tmp.resolve("vae/config.json"));
                    weights(tmp.resolve("vae/diffusion_pytorch_model.safetensors"),
                            vaeWeights(AutoencoderKLHunyuanVideo.decoderShapes(vc), AutoencoderKLHunyuanVideo.encoderShapes(vc), seed, dtype), d);
                    component(tmp, "text_encoder", "model.safetensors", g.get("text_encoder"), llamaShapes(g.get("text_encoder")), seed + 1, dtype, d);
                    component(tmp, "text_encoder_2", "model.safetensors", g.get("text_encoder_2"), clipShapes(g.get("text_encoder_2")), seed + 2, dtype, d);
                    copyDir(tokenizers.resolve("llama-demo"), tmp.resolve("tokenizer"));
                    copyDir(tokenizers.resolve("clip"), tmp.resolve("tokenizer_2"));
                });
    }

    /**
     * A generated HiDream-I1 demo folder: random {@code transformer/} (MoE), {@code vae/}, CLIP-L and CLIP-G with
     * projections ({@code text_encoder/}, {@code text_encoder_2/}), T5 ({@code text_encoder_3/}) and a Llama
     * ({@code text_encoder_4/}) from the descriptor's configs, the real CLIP and T5 tokenizers and the small byte-level
     * Llama-3-style tokenizer ({@code tokenizers/llama-demo}) as {@code tokenizer_4/}.
     */
    public static void writeHiDream(ModelDescriptor d, Path root, Path tokenizers) throws IOException {
        writeFolder(d, root, tokenizers, List.of("clip/vocab.json", "t5/spiece.model", "llama-demo/tokenizer.json"), "HiDreamImagePipeline", new String[][] {
                {"scheduler", "diffusers", g(d, "scheduler")},
                {"text_encoder", "transformers", "CLIPTextModelWithProjection"}, {"text_encoder_2", "transformers", "CLIPTextModelWithProjection"},
                {"text_encoder_3", "transformers", "T5EncoderModel"}, {"text_encoder_4", "transformers", "LlamaModel"},
                {"tokenizer", "transformers", "CLIPTokenizer"}, {"tokenizer_2", "transformers", "CLIPTokenizer"},
                {"tokenizer_3", "transformers", "T5Tokenizer"}, {"tokenizer_4", "transformers", "PreTrainedTokenizerFast"},
                {"transformer", "diffusers", "HiDreamImageTransformer2DModel"}, {"vae", "diffusers", "AutoencoderKL"}},
                (tmp, g, seed, dtype) -> {
                    json(tmp.resolve("transformer/config.json"), g.get("transformer"));
                    HiDreamConfig hc = HiDreamConfig.fromDiffusersConfig(tmp.resolve("transformer/config.json"));
                    weights(tmp.resolve("transformer/diffusion_pytorch_model.safetensors"), HiDreamTransformer.randomWeights(hc, seed, dtype), d);
                    component(tmp, "text_encoder", "model.safetensors", g.get("text_encoder"), clipProjectionShapes(g.get("text_encoder")), seed + 1, dtype, d);
                    component(tmp, "text_encoder_2", "model.safetensors", g.get("text_encoder_2"), clipProjectionShapes(g.get("text_encoder_2")), seed + 2, dtype, d);
                    component(tmp, "text_encoder_3", "model.safetensors", g.get("text_encoder_3"), t5Shapes(g.get("text_encoder_3")), seed + 3, dtype, d);
                    component(tmp, "text_encoder_4", "model.safetensors", g.get("text_encoder_4"), llamaShapes(g.get("text_encoder_4")), seed + 4, dtype, d);
                    component(tmp, "vae", "diffusion_pytorch_model.safetensors", g.get("vae"), vaeShapes(g.get("vae")), seed + 5, dtype, d);
                    copyDir(tokenizers.resolve("clip"), tmp.resolve("tokenizer"));
                    copyDir(tokenizers.resolve("clip"), tmp.resolve("tokenizer_2"));
                    copyDir(tokenizers.resolve("t5"), tmp.resolve("tokenizer_3"));
                    copyDir(tokenizers.resolve("llama-demo"), tmp.resolve("tokenizer_4"));
                    // Llama-3.1-Instruct's special tokens: HiDream pads with the eos token, <|eot_id|>
                    json(tmp.resolve("tokenizer_4/tokenizer_config.json"), JSON.createObjectNode().put("bos_token", "<|begin_of_text|>")
                            .put("eos_token", "<|eot_id|>").put("padding_side", "right").put("model_max_length", 8192));
                });
    }

    private static String g(ModelDescriptor d, String part) {
        return d.generate().path(part).path("_class_name").asText("FlowMatchLCMScheduler");
    }

    /** {@link #clipShapes} plus the projection of a {@code CLIPTextModelWithProjection}. */
    static Map<String, long[]> clipProjectionShapes(JsonNode c) {
        Map<String, long[]> m = clipShapes(c);
        m.put("text_projection.weight", new long[] {c.get("projection_dim").asLong(), c.get("hidden_size").asLong()});
        return m;
    }

    /**
     * A generated COSMOS demo folder laid out as nvidia/Cosmos-Predict2-2B-Text2Image: random {@code transformer/}, {@code vae/}
     * (Wan 2.1), {@code text_encoder/} (T5 with its {@code feed_forward_proj}) with the real T5 tokenizer, plus what the
     * paper adds: {@code text_encoder_2/} + {@code tokenizer_2/} (CLIP-L) and {@code pooled_adapter.safetensors} (random, non-zero gains).
     */
    public static void writeCosmos(ModelDescriptor d, Path root, Path tokenizers) throws IOException {
        writeFolder(d, root, tokenizers, List.of("clip/vocab.json", "t5/spiece.model"), "Cosmos2TextToImagePipeline", new String[][] {
                {"scheduler", "diffusers", "FlowMatchEulerDiscreteScheduler"},
                {"text_encoder", "transformers", "T5EncoderModel"}, {"tokenizer", "transformers", "T5TokenizerFast"},
                {"transformer", "diffusers", "CosmosTransformer3DModel"}, {"vae", "diffusers", "AutoencoderKLWan"}},
                (tmp, g, seed, dtype) -> {
                    json(tmp.resolve("transformer/config.json"), g.get("transformer"));
                    CosmosConfig cc = CosmosConfig.fromDiffusersConfig(tmp.resolve("transformer/config.json"));
                    weights(tmp.resolve("transformer/diffusion_pytorch_model.safetensors"),
                            RandomWeights.generate(CosmosTransformer.parameterShapes(cc), seed, dtype), d);
                    json(tmp.resolve("vae/config.json"), g.get("vae"));
                    WanVaeConfig vc = WanVaeConfig.read(tmp.resolve("vae/config.json"));
                    weights(tmp.resolve("vae/diffusion_pytorch_model.safetensors"), vaeWeights(AutoencoderKLWan.decoderShapes(vc),
                            AutoencoderKLWan.encoderShapes(vc), seed, dtype), d);
                    component(tmp, "text_encoder", "model.safetensors", g.get("text_encoder"), t5Shapes(g.get("text_encoder")), seed + 1, dtype, d);
                    component(tmp, "text_encoder_2", "model.safetensors", g.get("text_encoder_2"), clipShapes(g.get("text_encoder_2")), seed + 2, dtype, d);
                    weights(tmp.resolve("pooled_adapter.safetensors"), RandomWeights.generate(PooledClipAdapter.parameterShapes(cc.numLayers(),
                            cc.conditioningDim(), g.get("text_encoder_2").get("hidden_size").asLong()), seed + 4, dtype), d);
                    copyDir(tokenizers.resolve("t5"), tmp.resolve("tokenizer"));
                    copyDir(tokenizers.resolve("clip"), tmp.resolve("tokenizer_2"));
                });
    }

    /** Writes the components of a demo folder into {@code tmp}. */
    @FunctionalInterface
    private interface Components {
        void write(Path tmp, JsonNode generate, long seed, DType dtype) throws IOException;
    }

    /**
     * A generated diffusers folder: checks the tokenizer files, writes {@code model_index.json} and the scheduler config,
     * lets {@code components} write the rest into a temporary folder, then moves it into place (no half-written folder).
     */
    private static void writeFolder(ModelDescriptor d, Path root, Path tokenizers, List<String> tokenizerFiles, String className,
                                    String[][] index, Components components) throws IOException {
        JsonNode g = d.generate();
        long seed = g.path("seed").asLong(0);
        DType dtype = DType.parse(g.path("dtype").asText("F32"));
        for (String f : tokenizerFiles) {
            if (!Files.isRegularFile(tokenizers.resolve(f))) {
                throw new ModelFormatException(tokenizers + ": the demo model needs the tokenizer files " + tokenizerFiles);
            }
        }
        Files.createDirectories(root.getParent());
        Path tmp = Files.createTempDirectory(root.getParent(), "." + root.getFileName());
        try {
            ObjectNode modelIndex = JSON.createObjectNode().put("_class_name", className).put("_mmdit4j_demo", d.name())
                    .put("_mmdit4j_demo_format", FORMAT);
            for (String[] c : index) modelIndex.putArray(c[0]).add(c[1]).add(c[2]);
            json(tmp.resolve("model_index.json"), modelIndex);
            json(tmp.resolve("scheduler/scheduler_config.json"), g.get("scheduler"));
            components.write(tmp, g, seed, dtype);
            try {
                Files.move(tmp, root, StandardCopyOption.ATOMIC_MOVE);
            } catch (java.nio.file.FileAlreadyExistsException | java.nio.file.DirectoryNotEmptyException e) {
                // another process wrote the same demo meanwhile (the bytes are deterministic): use theirs
                if (!Files.isRegularFile(root.resolve("model_index.json"))) throw e;
            }
        } finally {
            if (Files.exists(tmp)) io.mmdit4j.runtime.Files2.deleteTree(tmp);
        }
    }

    /**
     * A video VAE's random weights: the decoder path from {@code seed + 3} (as before the encoders existed, so the demos'
     * decodes did not change) and the encoder path ({@code encoder.*}, {@code quant_conv.*}) from {@code seed + 5}.
     */
    private static Map<String, Tensor> vaeWeights(Map<String, long[]> decoder, Map<String, long[]> encoder, long seed, DType dtype) {
        Map<String, Tensor> all = new LinkedHashMap<>(RandomWeights.generate(decoder, seed + 3, dtype));
        all.putAll(RandomWeights.generate(encoder, seed + 5, dtype));
        return all;
    }

    /** {@code name/config.json} and {@code name/file} with random weights of the given shapes. */
    private static void component(Path tmp, String name, String file, JsonNode config, Map<String, long[]> shapes, long seed, DType dtype,
                                  ModelDescriptor d) throws IOException {
        json(tmp.resolve(name).resolve("config.json"), config);
        weights(tmp.resolve(name).resolve(file), RandomWeights.generate(shapes, seed, dtype), d);
    }

    /** transformers' LlamaModel (no LM head): embeddings, per layer attention (grouped k/v) + SwiGLU MLP + two RMSNorms, final norm. */
    static Map<String, long[]> llamaShapes(JsonNode c) {
        long d = c.get("hidden_size").asLong(), inter = c.get("intermediate_size").asLong();
        long heads = c.get("num_attention_heads").asLong(), kv = c.path("num_key_value_heads").asLong(heads), head = d / heads;
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put("embed_tokens.weight", new long[] {c.get("vocab_size").asLong(), d});
        for (int i = 0; i < c.get("num_hidden_layers").asInt(); i++) {
            String p = "layers." + i + ".";
            m.put(p + "input_layernorm.weight", new long[] {d});
            m.put(p + "self_attn.q_proj.weight", new long[] {heads * head, d});
            m.put(p + "self_attn.k_proj.weight", new long[] {kv * head, d});
            m.put(p + "self_attn.v_proj.weight", new long[] {kv * head, d});
            m.put(p + "self_attn.o_proj.weight", new long[] {d, heads * head});
            m.put(p + "post_attention_layernorm.weight", new long[] {d});
            m.put(p + "mlp.gate_proj.weight", new long[] {inter, d});
            m.put(p + "mlp.up_proj.weight", new long[] {inter, d});
            m.put(p + "mlp.down_proj.weight", new long[] {d, inter});
        }
        m.put("norm.weight", new long[] {d});
        return m;
    }

    static Map<String, long[]> clipShapes(JsonNode c) {
        long d = c.get("hidden_size").asLong(), inter = c.get("intermediate_size").asLong();
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put("text_model.embeddings.token_embedding.weight", new long[] {c.path("vocab_size").asLong(49408), d});
        m.put("text_model.embeddings.position_embedding.weight", new long[] {c.path("max_position_embeddings").asLong(77), d});
        for (int i = 0; i < c.get("num_hidden_layers").asInt(); i++) {
            String p = "text_model.encoder.layers." + i + ".";
            for (String proj : new String[] {"q_proj", "k_proj", "v_proj", "out_proj"}) linear(m, p + "self_attn." + proj, d, d);
            norm(m, p + "layer_norm1", d);
            norm(m, p + "layer_norm2", d);
            linear(m, p + "mlp.fc1", d, inter);
            linear(m, p + "mlp.fc2", inter, d);
        }
        norm(m, "text_model.final_layer_norm", d);
        return m;
    }

    static Map<String, long[]> t5Shapes(JsonNode c) {
        long d = c.get("d_model").asLong(), inner = c.get("d_kv").asLong() * c.get("num_heads").asLong(), ff = c.get("d_ff").asLong();
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put("shared.weight", new long[] {c.path("vocab_size").asLong(32128), d});
        m.put("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                new long[] {c.path("relative_attention_num_buckets").asLong(32), c.get("num_heads").asLong()});
        for (int i = 0; i < c.get("num_layers").asInt(); i++) {
            String p = "encoder.block." + i + ".layer.";
            m.put(p + "0.layer_norm.weight", new long[] {d});
            for (String proj : new String[] {"q", "k", "v"}) m.put(p + "0.SelfAttention." + proj + ".weight", new long[] {inner, d});
            m.put(p + "0.SelfAttention.o.weight", new long[] {d, inner});
            m.put(p + "1.layer_norm.weight", new long[] {d});
            if (c.path("feed_forward_proj").asText("gated-gelu").equals("relu")) {
                m.put(p + "1.DenseReluDense.wi.weight", new long[] {ff, d});
            } else {
                m.put(p + "1.DenseReluDense.wi_0.weight", new long[] {ff, d});
                m.put(p + "1.DenseReluDense.wi_1.weight", new long[] {ff, d});
            }
            m.put(p + "1.DenseReluDense.wo.weight", new long[] {d, ff});
        }
        m.put("encoder.final_layer_norm.weight", new long[] {d});
        return m;
    }

    /** diffusers AutoencoderKL: encoder and decoder parameters, as its loader takes them. */
    static Map<String, long[]> vaeShapes(JsonNode c) {
        VaeConfig config = VaeConfig.fromJson(c, "demo vae config");
        return ParameterShapes.of("demo AutoencoderKL parameters", sd -> AutoencoderKL.fromStateDict(sd, config, DType.F32));
    }

    private static void linear(Map<String, long[]> m, String p, long in, long out) {
        m.put(p + ".weight", new long[] {out, in});
        m.put(p + ".bias", new long[] {out});
    }

    private static void norm(Map<String, long[]> m, String p, long c) {
        m.put(p + ".weight", new long[] {c});
        m.put(p + ".bias", new long[] {c});
    }

    private static void weights(Path file, Map<String, Tensor> tensors, ModelDescriptor d) {
        try {
            SafetensorsWriter.write(file, tensors, Map.of("format", "pt", "generated_by", "mmdit4j " + d.name()));
        } finally {
            Tensors.closeAll(tensors.values());
        }
    }

    private static void json(Path file, JsonNode node) throws IOException {
        if (node == null) throw new ModelFormatException("model descriptor lacks the config for " + file.getParent().getFileName());
        Files.createDirectories(file.getParent());
        JSON.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), node);
    }

    private static void copyDir(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> s = Files.list(from)) {
            for (Path f : (Iterable<Path>) s::iterator) {
                if (Files.isRegularFile(f)) Files.copy(f, to.resolve(f.getFileName().toString()));
            }
        }
    }

}
