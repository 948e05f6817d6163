package io.mmdit4j.hunyuan;

import io.mmdit4j.GoldenData;
import io.mmdit4j.text.llama.TinyLlamaTokenizerJson;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A tiny diffusers HunyuanVideo folder assembled at test time from the golden components (never copied into the repo):
 * the tiny transformer (text_embed_dim 32, pooled_projection_dim 24, 16 channels), the tiny causal VAE (16 latent
 * channels), the tiny Llama (hidden 32, vocabulary 1024) with a hand-made Llama-3-style tokenizer whose ids fit it, the
 * FLUX golden pipeline's tiny CLIP-L (hidden 24) and its tokenizer, and HunyuanVideo's scheduler config (shift 7).
 * The widths fit together as they come, so no component had to be generated.
 */
public final class TinyHunyuanVideoFolder {
    static final Path TRANSFORMER = GoldenData.root().resolve("hunyuan_video_transformer/models/tiny/transformer");
    static final Path VAE = GoldenData.root().resolve("hunyuan_video_vae/models/vae");
    static final Path LLAMA = GoldenData.root().resolve("llama_text_encoder/models/tiny/text_encoder");
    static final Path FLUX = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev");

    private TinyHunyuanVideoFolder() {}

    /** Writes the folder as {@code dir} (created) and returns it. */
    public static Path write(Path dir) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("model_index.json"), "{\n  \"_class_name\": \"HunyuanVideoPipeline\",\n  \"_diffusers_version\": \"0.32.2\",\n"
                + "  \"scheduler\": [\"diffusers\", \"FlowMatchEulerDiscreteScheduler\"],\n"
                + "  \"text_encoder\": [\"transformers\", \"LlamaModel\"],\n  \"text_encoder_2\": [\"transformers\", \"CLIPTextModel\"],\n"
                + "  \"tokenizer\": [\"transformers\", \"LlamaTokenizerFast\"],\n  \"tokenizer_2\": [\"transformers\", \"CLIPTokenizer\"],\n"
                + "  \"transformer\": [\"diffusers\", \"HunyuanVideoTransformer3DModel\"],\n  \"vae\": [\"diffusers\", \"AutoencoderKLHunyuanVideo\"]\n}\n");
        copy(TRANSFORMER, dir.resolve("transformer"));
        copy(VAE, dir.resolve("vae"));
        copy(LLAMA, dir.resolve("text_encoder"));
        Path tok = TinyLlamaTokenizerJson.write(dir.resolve("tokenizer")).getParent();
        Files.writeString(tok.resolve("tokenizer_config.json"), "{\"pad_token\": \"<pad>\", \"padding_side\": \"right\"}");
        copy(FLUX.resolve("tokenizer"), dir.resolve("tokenizer_2"));
        copy(FLUX.resolve("text_encoder"), dir.resolve("text_encoder_2"));
        Files.createDirectories(dir.resolve("scheduler"));
        Files.writeString(dir.resolve("scheduler/scheduler_config.json"),
                "{\"_class_name\": \"FlowMatchEulerDiscreteScheduler\", \"num_train_timesteps\": 1000, \"shift\": 7.0}\n");
        return dir;
    }

    private static void copy(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (var files = Files.list(from)) {
            for (Path f : (Iterable<Path>) files::iterator) Files.copy(f, to.resolve(f.getFileName()));
        }
    }
}
