package io.mmdit4j.hunyuan.vae;

import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenRunner;
import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.Tiling;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.ProcessMemory;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.rand;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * AutoencoderKLHunyuanVideo encode against diffusers 0.32.2 (the repository's {@code hunyuan_video_vae_encode} cases:
 * one pass, batch 2, the frame-wise tiled encode, the spatially tiled encode), its input checks, the lazy loading of
 * the encoder weights, and a real-size dry run on meta tensors.
 */
class HunyuanVideoVaeEncodeGoldenTest {
    private static final Path MODEL = GoldenData.root().resolve("hunyuan_video_vae/models/vae");
    private static final Path WEIGHTS = MODEL.resolve("diffusion_pytorch_model.safetensors");

    @TempDir
    Path tmp;

    @BeforeAll
    static void init() {
        assumeTrue(Files.isDirectory(MODEL), "golden HunyuanVideo VAE not found at " + MODEL.toAbsolutePath());
        Torch.init();
    }

    static Path casesDir() {
        return GoldenData.reference("hunyuan_video_vae");
    }

    @Test
    void everyReferenceCaseMatchesDiffusers() throws IOException {
        Path cases = casesDir();
        List<String> encodeCases;
        try (Stream<Path> s = Files.list(cases)) {
            encodeCases = s.filter(d -> Files.isRegularFile(d.resolve("case.json"))).filter(d -> readKind(d).equals("hunyuan_video_vae_encode"))
                    .map(d -> "hunyuan_video_vae/" + d.getFileName()).sorted().collect(Collectors.toList());
        }
        assertTrue(encodeCases.size() >= 4, "expected the 4 encode cases under " + cases + ", found " + encodeCases);

        List<CaseResult> results = new GoldenRunner().run(List.of(cases), r -> System.out.println(r.line()));
        List<CaseResult> encode = results.stream().filter(r -> encodeCases.contains(r.caseName())).collect(Collectors.toList());
        List<String> bad = encode.stream().filter(r -> r.status() != CaseResult.Status.PASS).map(CaseResult::line).collect(Collectors.toList());
        assertTrue(bad.isEmpty(), String.join("\n", bad));
        assertEquals(new TreeSet<>(encodeCases), encode.stream().map(CaseResult::caseName).collect(Collectors.toCollection(TreeSet::new)));
        for (String name : encodeCases) {
            assertEquals(List.of("mean", "std", "normalized_mean"),
                    encode.stream().filter(r -> r.caseName().equals(name)).map(CaseResult::output).collect(Collectors.toList()), name);
        }
    }

    @Test
    void badVideosAreRefusedBeforeTheEncoderLoads() {
        try (AutoencoderKLHunyuanVideo vae = AutoencoderKLHunyuanVideo.load(MODEL, DType.F32); PointerScope scope = new PointerScope()) {
            expect(IllegalArgumentException.class, () -> vae.encode(video(1, 3, 5, 16)), "[1, 3, 5, 16]", "expected [batch, 3, frames, height, width]");
            expect(IllegalArgumentException.class, () -> vae.encode(video(1, 4, 1, 16, 16)), "[1, 4, 1, 16, 16]", "expected [batch, 3,");
            expect(IllegalArgumentException.class, () -> vae.encode(video(1, 3, 4, 16, 16)), "4 frames", "expected 4k+1 frames");
            expect(IllegalArgumentException.class, () -> vae.encode(video(1, 3, 1, 20, 16)), "20x16", "multiples of 8");
            expect(IllegalArgumentException.class, () -> vae.encode(video(1, 3, 1, 16, 12)), "16x12", "multiples of 8");
            expect(IllegalArgumentException.class, () -> vae.encode(video(1, 3, 1, 16, 16).to(ScalarType.Long)), "floating-point");
            expect(IllegalArgumentException.class, () -> vae.encode(null), "null");
            expect(IllegalArgumentException.class, () -> vae.encode(video(1, 3, 1, 16, 16), new Tiling(true, true, 4, 256, 16, 4, 192, 12)), "at least 8");
            expect(IllegalArgumentException.class, () -> vae.scaleLatents(video(1, 3, 1, 2, 2)), "expected [batch, 16,");
            assertFalse(vae.encoderLoaded(), "a refused video must not load the encoder");
        }
    }

    @Test
    void encoderLoadsLazilyOnceAndEncodesAgreeAcrossThreads() throws Exception {
        try (AutoencoderKLHunyuanVideo vae = AutoencoderKLHunyuanVideo.load(MODEL, DType.F32); PointerScope scope = new PointerScope()) {
            Tensor v = video(2, 3, 5, 16, 24);
            vae.decode(rand(new long[] {1, 16, 2, 2, 3}, new GeneratorOptional(createCPUGenerator(3)), new TensorOptions(ScalarType.Float))).close();
            assertFalse(vae.encoderLoaded(), "decoding must not load the encoder");
            ExecutorService pool = Executors.newFixedThreadPool(2);
            try {
                List<Future<float[]>> means = new ArrayList<>();
                for (int i = 0; i < 2; i++) {
                    means.add(pool.submit(() -> {
                        try (PointerScope s = new PointerScope(); AutoencoderKL.Encoded e = vae.encode(v)) {
                            return Tensors.toFloats(e.mean());
                        }
                    }));
                }
                assertArrayEquals(means.get(0).get(), means.get(1).get());
            } finally {
                pool.shutdown();
            }
            assertTrue(vae.encoderLoaded());
            try (AutoencoderKL.Encoded e = vae.encode(v.to(ScalarType.BFloat16))) { // any float dtype in: computed in the VAE's
                assertEquals(DType.F32, Tensors.dtype(e.mean()));
                assertArrayEquals(new long[] {2, 16, 2, 2, 3}, Tensors.shape(e.mean()));
                assertArrayEquals(new long[] {2, 16, 2, 2, 3}, Tensors.shape(e.std()));
                assertArrayEquals(new long[] {2, 16, 2, 2, 3}, Tensors.shape(e.logvar()));
                Tensor scaled = vae.scaleLatents(e.mean());
                Tensor back = vae.unscaleLatents(scaled);
                assertTrue(HunyuanVideoVaeGoldenTest.maxAbs(back, e.mean()) < 1e-6);
                assertEquals(0.476986, scaled.div(e.mean()).mean().item_double(), 1e-5);
            }
        }
    }

    @Test
    void tilingThatDoesNotApplyIsTheOnePassEncode() {
        try (AutoencoderKLHunyuanVideo vae = AutoencoderKLHunyuanVideo.load(MODEL, DType.F32); PointerScope scope = new PointerScope()) {
            Tensor v = video(1, 3, 9, 32, 48);
            try (AutoencoderKL.Encoded plain = vae.encode(v, Tiling.NONE); AutoencoderKL.Encoded dflt = vae.encode(v);
                 AutoencoderKL.Encoded enabled = vae.encode(v, Tiling.ENABLED)) {
                assertEquals(0.0, HunyuanVideoVaeGoldenTest.maxAbs(plain.mean(), dflt.mean()));
                assertEquals(0.0, HunyuanVideoVaeGoldenTest.maxAbs(plain.mean(), enabled.mean()));
                assertEquals(0.0, HunyuanVideoVaeGoldenTest.maxAbs(plain.std(), enabled.std()));
            }
        }
    }

    @Test
    void realSizeDryRunOnMeta() {
        HunyuanVideoVaeConfig c = HunyuanVideoVaeConfig.hunyuanVideo();
        try (AutoencoderKLHunyuanVideo meta = AutoencoderKLHunyuanVideo.meta(c, DType.BF16); PointerScope scope = new PointerScope();
             Device device = new Device("meta")) {
            assertFalse(meta.encoderLoaded());
            Tensor v = empty(new long[] {1, 3, 61, 320, 512}, new TensorOptions(ScalarType.BFloat16).device(new DeviceOptional(device)),
                    new MemoryFormatOptional());
            long[] latent = {1, 16, 16, 40, 64};
            for (Tiling t : new Tiling[] {Tiling.DIFFUSERS_DEFAULT, Tiling.NONE, Tiling.ENABLED}) {
                try (AutoencoderKL.Encoded e = meta.encode(v, t)) {
                    assertArrayEquals(latent, Tensors.shape(e.mean()), t.toString());
                    assertArrayEquals(latent, Tensors.shape(e.logvar()), t.toString());
                    assertArrayEquals(latent, Tensors.shape(e.std()), t.toString());
                    assertTrue(e.mean().is_meta());
                    assertArrayEquals(latent, Tensors.shape(meta.scaleLatents(e.mean())));
                }
            }
            assertTrue(meta.encoderLoaded());

            long[] video = Tensors.shape(v);
            AutoencoderKLHunyuanVideo.EncodePlan plain = meta.encodePlan(video, Tiling.NONE);
            AutoencoderKLHunyuanVideo.EncodePlan chunked = meta.encodePlan(video, Tiling.DIFFUSERS_DEFAULT);
            AutoencoderKLHunyuanVideo.EncodePlan both = meta.encodePlan(video, Tiling.ENABLED);
            for (AutoencoderKLHunyuanVideo.EncodePlan p : List.of(plain, chunked, both)) assertArrayEquals(latent, p.latentShape());
            assertEquals(1, plain.passes());
            assertEquals(6, chunked.passes());          // frames 0, 12, ..., 60
            assertEquals(6 * 2 * 3, both.passes());     // × rows 0, 192 × columns 0, 192, 384
            System.out.printf("encode plan, bf16 61×320×512: untiled %.2f GB, frame-wise %.2f GB, frame-wise + tiled %.2f GB%n",
                    plain.peakActivationBytes() / 1e9, chunked.peakActivationBytes() / 1e9, both.peakActivationBytes() / 1e9);
            // the largest untiled stage: conv_in's 128 channels at full size, input + padded + 2 outputs
            assertTrue(plain.peakActivationBytes() >= 3L * 128 * 61 * 320 * 512 * 2, "untiled peak " + plain.peakActivationBytes());
            assertTrue(chunked.peakActivationBytes() < plain.peakActivationBytes() / 2, "frame-wise encoding must need less");
            assertTrue(both.peakActivationBytes() < chunked.peakActivationBytes(), "spatial tiling must need less again");
            expect(IllegalArgumentException.class, () -> meta.encodePlan(new long[] {1, 3, 60, 320, 512}, Tiling.NONE), "4k+1");
        }
        Map<String, long[]> shapes = AutoencoderKLHunyuanVideo.encoderShapes(c);
        assertArrayEquals(new long[] {128, 3, 3, 3, 3}, shapes.get("encoder.conv_in.conv.weight"));
        assertArrayEquals(new long[] {256, 256, 3, 3, 3}, shapes.get("encoder.down_blocks.1.downsamplers.0.conv.conv.weight"));
        assertArrayEquals(new long[] {32, 512, 3, 3, 3}, shapes.get("encoder.conv_out.conv.weight"));
        assertArrayEquals(new long[] {32, 32, 1, 1, 1}, shapes.get("quant_conv.weight"));
        assertFalse(shapes.containsKey("encoder.down_blocks.3.downsamplers.0.conv.conv.weight"));
        assertTrue(shapes.keySet().stream().allMatch(k -> k.startsWith("encoder.") || k.startsWith("quant_conv.")));
    }

    @Test
    void encoderWeightsAreCheckedOnTheFirstEncode() throws IOException {
        Path decoderOnly = folder("decoder-only", k -> k.startsWith("decoder.") || k.startsWith("post_quant_conv."), null);
        try (AutoencoderKLHunyuanVideo vae = AutoencoderKLHunyuanVideo.load(decoderOnly, DType.F32); PointerScope scope = new PointerScope()) {
            vae.decode(rand(new long[] {1, 16, 1, 2, 2}, new GeneratorOptional(createCPUGenerator(4)), new TensorOptions(ScalarType.Float))).close();
            Tensor v = video(1, 3, 1, 16, 16);
            String file = decoderOnly.resolve("diffusion_pytorch_model.safetensors").toString();
            expect(ModelFormatException.class, () -> vae.encode(v), file, "missing tensor 'encoder.conv_in.conv.weight'", "cannot encode");
            expect(ModelFormatException.class, () -> vae.encode(v), file, "'encoder.conv_in.conv.weight'"); // not cached as loaded
            assertFalse(vae.encoderLoaded());
        }
        Path noQuant = folder("no-quant", k -> !k.equals("quant_conv.bias"), null);
        try (AutoencoderKLHunyuanVideo vae = AutoencoderKLHunyuanVideo.load(noQuant, DType.F32); PointerScope scope = new PointerScope()) {
            expect(ModelFormatException.class, () -> vae.encode(video(1, 3, 1, 16, 16)), "missing tensor 'quant_conv.bias'", "[32]");
        }
        Path extra = folder("extra", k -> true, "encoder.down_blocks.3.downsamplers.0.conv.conv.weight");
        try (AutoencoderKLHunyuanVideo vae = AutoencoderKLHunyuanVideo.load(extra, DType.F32); PointerScope scope = new PointerScope()) {
            expect(ModelFormatException.class, () -> vae.encode(video(1, 3, 1, 16, 16)), "unexpected tensor",
                    "encoder.down_blocks.3.downsamplers.0.conv.conv.weight");
        }
    }

    @Test
    void repeatedEncodesKeepRssFlat() {
        try (AutoencoderKLHunyuanVideo vae = AutoencoderKLHunyuanVideo.load(MODEL, DType.F32); PointerScope scope = new PointerScope()) {
            Tensor v = video(1, 3, 21, 32, 48);
            Tiling small = new Tiling(true, true, 16, 32, 16, 8, 16, 12); // 2 chunks × 4 × 2 tiles
            for (int i = 0; i < 2; i++) encodeAll(vae, v, small);
            long before = ProcessMemory.rssMb();
            for (int i = 0; i < 6; i++) encodeAll(vae, v, small);
            long growthMb = ProcessMemory.rssMb() - before;
            System.out.printf("6 rounds of encodes: RSS %d -> %d MB%n", before, before + growthMb);
            assertTrue(growthMb < 40, "RSS grew by " + growthMb + " MB over 6 rounds of encodes (" + before + " MB before)");
        }
    }

    // ---------------------------------------------------------------- helpers

    private static void encodeAll(AutoencoderKLHunyuanVideo vae, Tensor v, Tiling tiling) {
        for (Tiling t : new Tiling[] {Tiling.NONE, Tiling.DIFFUSERS_DEFAULT, tiling}) {
            try (AutoencoderKL.Encoded e = vae.encode(v, t)) {
                vae.scaleLatents(e.mean()).close();
            }
        }
    }

    /** A video in [-1, 1] of the given shape (any rank, for the shape checks), seeded. */
    private static Tensor video(long... shape) {
        return rand(shape, new GeneratorOptional(createCPUGenerator(7)), new TensorOptions(ScalarType.Float)).mul(new org.bytedeco.pytorch.Scalar(2.0))
                .sub(new org.bytedeco.pytorch.Scalar(1.0));
    }

    private static String readKind(Path caseDir) {
        try {
            return new com.fasterxml.jackson.databind.ObjectMapper().readTree(caseDir.resolve("case.json").toFile()).path("kind").asText("");
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** A copy of the golden folder keeping the tensors {@code keep} selects, plus {@code extraKey} (a [1] tensor) when given. */
    private Path folder(String name, Predicate<String> keep, String extraKey) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(name));
        Files.copy(MODEL.resolve("config.json"), dir.resolve("config.json"));
        try (PointerScope scope = new PointerScope(); SafetensorsFile f = SafetensorsFile.open(WEIGHTS)) {
            Map<String, Tensor> all = new LinkedHashMap<>();
            for (String k : f.keys()) if (keep.test(k)) all.put(k, f.load(k));
            if (extraKey != null) all.put(extraKey, Tensors.fromFloats(new float[] {1}, 1));
            SafetensorsWriter.write(dir.resolve("diffusion_pytorch_model.safetensors"), all);
        }
        return dir;
    }

    private static void expect(Class<? extends Throwable> type, Executable body, String... fragments) {
        Throwable e = assertThrows(type, body);
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "message lacks '" + f + "': " + e.getMessage());
    }
}
