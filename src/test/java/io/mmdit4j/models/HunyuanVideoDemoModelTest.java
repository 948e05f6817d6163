package io.mmdit4j.models;

import io.mmdit4j.hunyuan.HunyuanVideoPipeline;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** models/hunyuan-video-tiny-demo.json: generated once as a diffusers HunyuanVideo folder, deterministic, and it generates videos. */
class HunyuanVideoDemoModelTest {
    @Test
    void generatedFolderIsDeterministicAndGenerates(@TempDir Path home) throws IOException {
        Files.createDirectories(home.resolve("models"));
        Files.copy(Path.of("models/hunyuan-video-tiny-demo.json"), home.resolve("models/hunyuan-video-tiny-demo.json"));
        for (String sub : new String[] {"clip", "llama-demo"}) {
            Files.createDirectories(home.resolve("models/tokenizers").resolve(sub));
            try (var files = Files.list(Path.of("models/tokenizers").resolve(sub))) {
                for (Path f : (Iterable<Path>) files::iterator) Files.copy(f, home.resolve("models/tokenizers").resolve(sub).resolve(f.getFileName()));
            }
        }
        Path root = new ModelRegistry(home, null).resolve("hunyuan-video-tiny-demo");
        for (String part : new String[] {"model_index.json", "scheduler/scheduler_config.json", "transformer/diffusion_pytorch_model.safetensors",
                "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "text_encoder_2/model.safetensors",
                "tokenizer/tokenizer.json", "tokenizer_2/vocab.json"}) {
            assertTrue(Files.isRegularFile(root.resolve(part)), part);
        }
        Path weights = root.resolve("transformer/diffusion_pytorch_model.safetensors");
        byte[] first = Files.readAllBytes(weights);
        try (var walk = Files.walk(root)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
        new ModelRegistry(home, null).resolve("hunyuan-video-tiny-demo");
        assertTrue(Arrays.equals(first, Files.readAllBytes(weights)), "same seed, same bytes");

        try (Pipeline pipe = Pipelines.load(root, LoadOptions.defaults()); PointerScope s = new PointerScope();
             GenerationResult r = pipe.generate(GenerationRequest.builder().prompt("a cat").size(32, 32).frames(5).steps(1).guidanceScale(6.0)
                     .seed(0).maxSequenceLength(8).build())) {
            assertEquals(7.0, pipe.unwrap(HunyuanVideoPipeline.class).schedulerConfig().shift());
            assertArrayEquals(new long[] {1, 5, 3, 32, 32}, Tensors.shape(r.frames()));
            for (float v : Tensors.toFloats(r.frames())) assertTrue(v >= 0f && v <= 1f, "finite frames in [0, 1], got " + v);
        }
    }
}
