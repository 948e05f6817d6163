package io.mmdit4j.models;

import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** models/*.json descriptors and how --model names resolve. */
class ModelRegistryTest {
    private static final Path HOME = Path.of(".");

    /**
     * The demo VAE's random weights are drawn in the order of its parameter list, now the AutoencoderKL loader's recording:
     * it must stay the order of the hand-written table it replaced (the hash of that table's key list).
     */
    @Test
    void demoVaeParameterListKeepsTheOrderThatSeedsItsWeights() {
        var vae = new ModelRegistry(HOME, null).descriptor("flux-tiny-demo").generate().get("vae");
        assertEquals(-1_893_940_792, String.join(",", DemoModels.vaeShapes(vae).keySet()).hashCode());
    }

    @Test
    void everyDescriptorParsesAndItsGuidanceSchedulesAreValid() {
        List<ModelDescriptor> all = new ModelRegistry(HOME, null).descriptors();
        assertTrue(all.stream().anyMatch(d -> d.name().equals("flux1-schnell")));
        assertTrue(all.stream().anyMatch(d -> d.name().equals("flux1-dev")));
        for (ModelDescriptor d : all) {
            assertEquals(d.file().getFileName().toString(), d.name() + ".json", "descriptor name matches its file");
            assertTrue(!d.recommendedGuidance().isEmpty(), d.name() + " recommends guidance");
            int blocks = d.name().startsWith("flux1") ? FluxConfig.schnell().totalBlocks()
                    : d.family().equals("hunyuan-video") ? io.mmdit4j.hunyuan.HunyuanVideoConfig.hunyuanVideo().totalBlocks()
                    : d.name().equals("flux-shapes-demo") ? 6 // 2 double + 4 single blocks
                    : 5;
            d.recommendedGuidance().forEach(g -> LayerSchedule.parse(g.layers()).factors(blocks));
        }
        assertEquals("5-", new ModelRegistry(HOME, null).descriptor("flux1-schnell").recommendedGuidance().get(0).layers());
    }

    @Test
    void realModelsNotOnDiskGiveInstructions(@TempDir Path empty) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new ModelRegistry(HOME, empty).resolve("flux1-dev"));
        assertTrue(e.getMessage().contains("black-forest-labs/FLUX.1-dev") && e.getMessage().contains("MMDIT_MODELS"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new ModelRegistry(HOME, null).resolve("no-such-model"));
        assertTrue(e.getMessage().contains("known:"), e.getMessage());
    }

    @Test
    void realModelFolderUnderMmditModelsIsFound(@TempDir Path models) throws IOException {
        Files.createDirectories(models.resolve("FLUX.1-schnell/transformer"));
        assertEquals(models.resolve("FLUX.1-schnell"), new ModelRegistry(HOME, models).resolve("flux1-schnell"));
    }

    @Test
    void generatedDemoModelIsDeterministicAndLoads(@TempDir Path home) throws IOException {
        Files.createDirectories(home.resolve("models"));
        Files.copy(Path.of("models/flux-tiny-demo.json"), home.resolve("models/flux-tiny-demo.json"));
        for (String sub : new String[] {"clip", "t5"}) {
            Files.createDirectories(home.resolve("models/tokenizers").resolve(sub));
            try (var files = Files.list(Path.of("models/tokenizers").resolve(sub))) {
                for (Path f : (Iterable<Path>) files::iterator) Files.copy(f, home.resolve("models/tokenizers").resolve(sub).resolve(f.getFileName()));
            }
        }
        Path root = new ModelRegistry(home, null).resolve("flux-tiny-demo");
        Path weights = root.resolve("transformer/diffusion_pytorch_model.safetensors");
        assertTrue(Files.isRegularFile(weights));
        for (String part : new String[] {"model_index.json", "scheduler/scheduler_config.json", "text_encoder/model.safetensors",
                "text_encoder_2/model.safetensors", "vae/diffusion_pytorch_model.safetensors", "tokenizer/vocab.json", "tokenizer_2/spiece.model"}) {
            assertTrue(Files.isRegularFile(root.resolve(part)), part);
        }
        byte[] first = Files.readAllBytes(weights);
        try (var walk = Files.walk(root)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
        new ModelRegistry(home, null).resolve("flux-tiny-demo");
        assertTrue(java.util.Arrays.equals(first, Files.readAllBytes(weights)), "same seed, same bytes");
        try (FluxTransformer model = FluxTransformer.load(root, DType.F32)) {
            assertTrue(model.config().guidanceEmbeds());
            assertEquals(5, model.config().totalBlocks());
        }
        try (SafetensorsFile f = SafetensorsFile.open(weights); PointerScope s = new PointerScope()) {
            Tensor a = f.load("x_embedder.weight");
            Tensor b = FluxTransformer.randomWeights(FluxConfig.fromDiffusersConfig(root.resolve("transformer/config.json")), 0, DType.F32)
                    .get("x_embedder.weight");
            assertTrue(equal(a, b));
        }
    }

    /** A generated demo cached by an older version (no format number: its video VAE had no encoder) is written again. */
    @Test
    void aCachedDemoOfAnOlderFormatIsWrittenAgain(@TempDir Path home) throws IOException {
        Files.createDirectories(home.resolve("models"));
        Files.copy(Path.of("models/cosmos-tiny-demo.json"), home.resolve("models/cosmos-tiny-demo.json"));
        for (String sub : new String[] {"clip", "t5"}) {
            Files.createDirectories(home.resolve("models/tokenizers").resolve(sub));
            try (var files = Files.list(Path.of("models/tokenizers").resolve(sub))) {
                for (Path f : (Iterable<Path>) files::iterator) Files.copy(f, home.resolve("models/tokenizers").resolve(sub).resolve(f.getFileName()));
            }
        }
        Path stale = home.resolve("target/models/cosmos-tiny-demo");
        Files.createDirectories(stale.resolve("vae"));
        Files.writeString(stale.resolve("model_index.json"), "{\"_class_name\": \"Cosmos2TextToImagePipeline\", \"_mmdit4j_demo\": \"cosmos-tiny-demo\"}");
        Files.writeString(stale.resolve("vae/old.txt"), "a file of the old folder");
        Path root = new ModelRegistry(home, null).resolve("cosmos-tiny-demo");
        assertEquals(stale, root);
        assertTrue(DemoModels.isCurrent(root));
        assertTrue(Files.notExists(root.resolve("vae/old.txt")), "the old folder is gone, not merged");
        try (SafetensorsFile f = SafetensorsFile.open(root.resolve("vae/diffusion_pytorch_model.safetensors"))) {
            assertTrue(f.keys().contains("encoder.conv_in.weight"), "the Wan VAE carries its encoder");
            assertTrue(f.keys().contains("decoder.conv_in.weight"));
        }
        try (var left = Files.list(root.getParent())) {
            assertEquals(List.of("cosmos-tiny-demo"), left.map(x -> x.getFileName().toString()).toList(), "no stale or temporary folder is left");
        }
    }

    /**
     * A bundled trained model ({@code "source": {"bundled": "<folder>"}}): the checkout's own folder when it has one,
     * else one copy of the library's folder in the cache, named by its contents' CRC and reused.
     */
    @Test
    void bundledModelIsTheCheckoutFolderOrOneCachedCopy(@TempDir Path dir) throws IOException {
        Path library = dir.resolve("library/trained"), checkout = dir.resolve("checkout"), cache = dir.resolve("cache");
        for (Path root : new Path[] {library, checkout.resolve("trained")}) {
            Files.createDirectories(root.resolve("transformer"));
            Files.writeString(root.resolve("model_index.json"), "{\"_class_name\": \"FluxPipeline\"}");
            Files.write(root.resolve("transformer/weights.bin"), new byte[] {1, 2, 3, 4});
        }
        Files.writeString(checkout.resolve("trained.json"), "{\"name\": \"trained\", \"family\": \"flux\", \"variant\": \"schnell\", \"source\": {\"bundled\": \"trained\"}}");
        java.util.function.Function<String, Path> classPath = folder -> dir.resolve("library").resolve(folder);
        assertEquals(checkout.resolve("trained"), new ModelRegistry(checkout, null, cache, classPath).resolve("trained"));

        Files.delete(checkout.resolve("trained/transformer/weights.bin")); // an application: the descriptor, no folder beside it
        Files.delete(checkout.resolve("trained/model_index.json"));
        ModelRegistry app = new ModelRegistry(checkout, null, cache, classPath);
        Path copy = app.resolve("trained");
        assertTrue(copy.startsWith(cache) && copy.getFileName().toString().matches("trained-[0-9a-f]{8}"), copy.toString());
        assertTrue(java.util.Arrays.equals(new byte[] {1, 2, 3, 4}, Files.readAllBytes(copy.resolve("transformer/weights.bin"))));
        var modified = Files.getLastModifiedTime(copy.resolve("transformer/weights.bin"));
        assertEquals(copy, app.resolve("trained"), "the second call reuses the copy");
        assertEquals(modified, Files.getLastModifiedTime(copy.resolve("transformer/weights.bin")));
        Files.write(library.resolve("transformer/weights.bin"), new byte[] {5, 6, 7, 8}); // a library with other weights
        Path other = app.resolve("trained");
        assertTrue(!other.equals(copy) && java.util.Arrays.equals(new byte[] {5, 6, 7, 8}, Files.readAllBytes(other.resolve("transformer/weights.bin"))));
        try (var left = Files.list(cache)) {
            assertEquals(2, left.count(), "the two copies, no temporary folder left behind");
        }
    }

    @Test
    void aBundledFolderOutsideTheLibraryOrMissingIsAClearError(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("escape.json"), "{\"name\": \"escape\", \"family\": \"flux\", \"variant\": \"schnell\", \"source\": {\"bundled\": \"../x\"}}");
        Files.writeString(dir.resolve("gone.json"), "{\"name\": \"gone\", \"family\": \"flux\", \"variant\": \"schnell\", \"source\": {\"bundled\": \"no-such-folder\"}}");
        ModelRegistry r = new ModelRegistry(dir, null, dir.resolve("cache"));
        Exception e = assertThrows(io.mmdit4j.io.ModelFormatException.class, () -> r.resolve("escape"));
        assertTrue(e.getMessage().contains("escape.json") && e.getMessage().contains("\"bundled\" must name a folder"), e.getMessage());
        e = assertThrows(io.mmdit4j.io.ModelFormatException.class, () -> r.resolve("gone"));
        assertTrue(e.getMessage().contains("--model gone") && e.getMessage().contains("no-such-folder"), e.getMessage());
    }
}
