package io.mmdit4j.models;

import io.mmdit4j.hunyuan.HunyuanVideoPipeline;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

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

        try (HunyuanVideoPipeline pipe = HunyuanVideoPipeline.load(root, DType.F32, DeviceSpec.CPU); PointerScope s = new PointerScope();
             HunyuanVideoPipeline.Result r = pipe.generate(new HunyuanVideoPipeline.Request(List.of("a cat"), 1, 32, 32, 5, 1, 6.0,
                     new long[] {0}, 8, null, null))) {
            assertEquals(7.0, pipe.schedulerConfig().shift());
            assertArrayEquals(new long[] {1, 5, 3, 32, 32}, Tensors.shape(r.frames()));
            for (float v : Tensors.toFloats(r.frames())) assertTrue(v >= 0f && v <= 1f, "finite frames in [0, 1], got " + v);
        }
    }
}
