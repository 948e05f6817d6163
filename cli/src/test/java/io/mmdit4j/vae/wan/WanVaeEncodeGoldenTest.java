package io.mmdit4j.vae.wan;

import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenCase;
import io.mmdit4j.golden.GoldenRunner;
import io.mmdit4j.golden.WanVaeCases;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
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
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * AutoencoderKLWan.encode against diffusers v0.35.2 (the repo's {@code src/test/reference/wan_vae/cases/encode_*}, made on the
 * golden tiny weights): every case through the runner and {@code GoldenRunner}; input errors before any work; a real-size
 * dry run on meta; the encoder's weights read on the first encode only, and a decoder-only file failing there clearly; no
 * native objects left by repeated encodes.
 */
class WanVaeEncodeGoldenTest {
    private static final Path MODEL = GoldenData.root().resolve("wan_vae/models/vae");
    private static final Path WEIGHTS = MODEL.resolve("diffusion_pytorch_model.safetensors");

    @TempDir
    Path tmp;

    @BeforeAll
    static void init() {
        assumeTrue(Files.isDirectory(MODEL), "golden Wan VAE not found at " + MODEL.toAbsolutePath());
        Torch.init();
    }

    /** The repo's reference cases (src/test/reference/wan_vae/cases). */
    static Path referenceCases() {
        return GoldenData.reference("wan_vae");
    }

    static List<Path> encodeCases() throws IOException {
        try (Stream<Path> s = Files.list(referenceCases())) {
            return s.filter(d -> Files.isRegularFile(d.resolve("case.json")) && GoldenCase.load(d).kind().equals("wan_vae_encode"))
                    .sorted().collect(Collectors.toList());
        }
    }

    @Test
    void everyEncodeCasePassesThroughTheRunnerAndTheRegisteredKind() throws IOException {
        List<Path> cases = encodeCases();
        assertEquals(3, cases.size(), "encode cases in " + referenceCases() + ": " + cases);
        for (Path dir : cases) {
            List<CaseResult> results = WanVaeCases.ENCODE.run(GoldenCase.load(dir));
            results.forEach(r -> System.out.println(r.line()));
            List<String> bad = results.stream().filter(r -> r.status() != CaseResult.Status.PASS).map(CaseResult::line).collect(Collectors.toList());
            assertTrue(bad.isEmpty(), String.join("\n", bad));
            assertEquals(List.of("mean", "std", "normalized_mean"), results.stream().map(CaseResult::output).collect(Collectors.toList()));
        }
        List<CaseResult> viaRunner = new GoldenRunner().run(List.of(referenceCases()), r -> {});
        List<CaseResult> encodes = viaRunner.stream().filter(r -> r.caseName().contains("encode")).collect(Collectors.toList());
        assertEquals(9, encodes.size(), viaRunner.toString());
        assertTrue(encodes.stream().allMatch(r -> r.status() == CaseResult.Status.PASS), encodes.toString());
    }

    @Test
    void badVideosAreRefusedBeforeAnyWorkWithExpectedAndGot() {
        try (AutoencoderKLWan vae = AutoencoderKLWan.load(MODEL, DType.F32, DeviceSpec.CPU); PointerScope scope = new PointerScope()) {
            expect(() -> vae.encode(video(1, 3, 4, 16, 16)), "[1, 3, 4, 16, 16]", "F = 1 + 4k", "got 4");
            expect(() -> vae.encode(video(1, 3, 0, 16, 16)), "got 0");
            expect(() -> vae.encode(video(1, 4, 1, 16, 16)), "[1, 4, 1, 16, 16]", "3 channels, got 4");
            expect(() -> vae.encode(video(1, 3, 5, 20, 16)), "[1, 3, 5, 20, 16]", "multiples of 8", "got 20 × 16");
            expect(() -> vae.encode(video(1, 3, 1, 16, 12)), "got 16 × 12");
            expect(() -> vae.encode(Tensors.fromFloats(new float[3 * 16 * 16], 1, 3, 16, 16)), "[1, 3, 16, 16]", "rank 5, got rank 4");
            expect(() -> vae.encode(video(1, 3, 1, 16, 16).to(ScalarType.Long)), "floating-point");
            expect(() -> vae.encode(null), "null");
            expect(() -> vae.normalize(video(1, 3, 1, 2, 2), 1.0), "[1, 3, 1, 2, 2]", "expected [B, 16, F, h, w]");
            assertFalse(vae.encoderLoaded(), "a refused input reads no encoder weights");
        }
    }

    @Test
    void encoderWeightsAreReadOnTheFirstEncodeOnlyAndNormalizeInvertsDenormalize() {
        try (AutoencoderKLWan vae = AutoencoderKLWan.load(MODEL, DType.F32, DeviceSpec.CPU); PointerScope scope = new PointerScope()) {
            assertFalse(vae.encoderLoaded(), "loading the VAE reads the decoder only");
            Tensor v = video(1, 3, 5, 16, 24);
            try (AutoencoderKL.Encoded a = vae.encode(v); AutoencoderKL.Encoded b = vae.encode(v)) {
                assertTrue(vae.encoderLoaded());
                assertArrayEquals(new long[] {1, 16, 2, 2, 3}, Tensors.shape(a.mean()));
                assertArrayEquals(Tensors.shape(a.mean()), Tensors.shape(a.std()));
                assertArrayEquals(Tensors.shape(a.mean()), Tensors.shape(a.logvar()));
                assertTrue(org.bytedeco.pytorch.global.torch.equal(a.mean(), b.mean()), "a second encode is the same computation");
                Tensor n = vae.normalize(a.mean(), 0.5);
                Tensor back = vae.denormalize(n, 0.5);
                double err = maxAbs(back, a.mean());
                assertTrue(err < 1e-5, "denormalize(normalize(x)) = x: max abs " + err);
                // bf16 input converts to the VAE dtype; the result is in the VAE dtype
                try (AutoencoderKL.Encoded c = vae.encode(v.to(ScalarType.BFloat16))) {
                    assertEquals(DType.F32, Tensors.dtype(c.mean()));
                }
            }
        }
    }

    @Test
    void aDecoderOnlyFileDecodesAndFailsOnEncodeNamingTheFileAndTheKey() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("decoder-only"));
        Files.copy(MODEL.resolve("config.json"), dir.resolve("config.json"));
        Path weights = dir.resolve("diffusion_pytorch_model.safetensors");
        try (PointerScope scope = new PointerScope(); SafetensorsFile f = SafetensorsFile.open(WEIGHTS)) {
            Map<String, Tensor> decoder = new LinkedHashMap<>();
            for (String k : f.keys()) if (!k.startsWith("encoder.") && !k.startsWith("quant_conv.")) decoder.put(k, f.load(k));
            SafetensorsWriter.write(weights, decoder);
        }
        try (AutoencoderKLWan vae = AutoencoderKLWan.load(dir, DType.F32, DeviceSpec.CPU); PointerScope scope = new PointerScope()) {
            Tensor decoded = vae.decode(Tensors.fromFloats(new float[16 * 2 * 3], 1, 16, 1, 2, 3));
            assertArrayEquals(new long[] {1, 3, 1, 16, 24}, Tensors.shape(decoded));
            for (int i = 0; i < 2; i++) { // the failed load leaves nothing half-built: it fails the same way again
                Throwable e = assertThrows(ModelFormatException.class, () -> vae.encode(video(1, 3, 1, 16, 24)).close());
                assertTrue(e.getMessage().contains(weights.toString()), e.getMessage());
                assertTrue(e.getMessage().contains("'encoder.conv_in.weight'"), e.getMessage());
                assertFalse(vae.encoderLoaded());
            }
        }
    }

    @Test
    void encoderKeyListMatchesTheCheckpointsEncoderHalf() {
        WanVaeConfig tiny = WanVaeConfig.read(MODEL.resolve("config.json"));
        Map<String, long[]> expected = AutoencoderKLWan.encoderShapes(tiny);
        try (SafetensorsFile f = SafetensorsFile.open(WEIGHTS)) {
            List<String> keys = f.keys().stream().filter(k -> k.startsWith("encoder.") || k.startsWith("quant_conv.")).sorted().collect(Collectors.toList());
            assertEquals(keys, expected.keySet().stream().sorted().collect(Collectors.toList()));
            for (String k : keys) assertArrayEquals(f.info(k).shape(), expected.get(k), k);
        }
    }

    @Test
    void metaDryRunAtRealSize() {
        WanVaeConfig real = WanVaeConfig.wan21();
        try (AutoencoderKLWan vae = AutoencoderKLWan.meta(real, DType.BF16); PointerScope scope = new PointerScope(); Device meta = new Device("meta")) {
            TensorOptions onMeta = new TensorOptions(ScalarType.BFloat16).device(new DeviceOptional(meta));
            try (AutoencoderKL.Encoded image = vae.encode(empty(new long[] {1, 3, 1, 768, 768}, onMeta, new MemoryFormatOptional()))) {
                assertArrayEquals(new long[] {1, 16, 1, 96, 96}, Tensors.shape(image.mean()));
                assertArrayEquals(new long[] {1, 16, 1, 96, 96}, Tensors.shape(image.std()));
                assertTrue(image.mean().is_meta());
            }
            try (AutoencoderKL.Encoded clip = vae.encode(empty(new long[] {2, 3, 9, 704, 1280}, onMeta, new MemoryFormatOptional()))) {
                assertArrayEquals(new long[] {2, 16, 3, 88, 160}, Tensors.shape(clip.mean()));
            }
            Tensor n = vae.normalize(empty(new long[] {1, 16, 1, 96, 96}, onMeta, new MemoryFormatOptional()), 1.0);
            assertArrayEquals(new long[] {1, 16, 1, 96, 96}, Tensors.shape(n));
        }
        long params = io.mmdit4j.io.ParameterShapes.count(AutoencoderKLWan.encoderShapes(real));
        System.out.println("Wan 2.1 VAE encoder + quant_conv parameters: " + params);
        assertEquals(53_596_928L, params, "Wan 2.1 encoder + quant_conv parameters (counted from diffusers' layer list by hand)");
    }

    @Test
    void bf16EncodeStaysCloseToTheReference() throws IOException {
        Path dir = encodeCases().stream().filter(d -> d.getFileName().toString().startsWith("encode_f9")).findFirst().orElseThrow();
        try (AutoencoderKLWan vae = AutoencoderKLWan.load(MODEL, DType.BF16, DeviceSpec.CPU);
             SafetensorsFile in = SafetensorsFile.open(dir.resolve("inputs.safetensors"));
             SafetensorsFile out = SafetensorsFile.open(dir.resolve("outputs.safetensors"));
             PointerScope scope = new PointerScope();
             AutoencoderKL.Encoded e = vae.encode(in.load("video"))) {
            assertEquals(DType.BF16, Tensors.dtype(e.mean()));
            Tensor expected = out.load("mean");
            double err = maxAbs(e.mean(), expected), range = maxAbs(expected, expected.mul(new org.bytedeco.pytorch.Scalar(0.0)));
            System.out.println("bf16 encode vs diffusers fp32: mean max_abs " + err + " of max |mean| " + range);
            assertTrue(err < 0.02 * Math.max(1.0, range), "bf16 mean too far from fp32: " + err + " (max |mean| " + range + ")");
        }
    }

    @Test
    void repeatedEncodesLeaveNoNativeObjects() {
        try (AutoencoderKLWan vae = AutoencoderKLWan.load(MODEL, DType.F32, DeviceSpec.CPU); PointerScope scope = new PointerScope()) {
            Tensor v = video(1, 3, 5, 16, 16);
            long left = io.mmdit4j.pipeline.NativeObjects.perRun(() -> {
                try (AutoencoderKL.Encoded e = vae.encode(v)) {
                    vae.normalize(e.mean(), 1.0).close();
                }
            });
            assertTrue(left <= 0, left + " native objects left per encode");
        }
    }

    // ---------------------------------------------------------------- helpers

    /** A deterministic video in [−1, 1] of the given shape (in the caller's scope). */
    private static Tensor video(long b, long c, long f, long h, long w) {
        int n = (int) (b * c * f * h * w);
        float[] data = new float[n];
        for (int i = 0; i < n; i++) data[i] = (float) Math.sin(i * 0.37);
        return Tensors.fromFloats(data, b, c, f, h, w);
    }

    private static double maxAbs(Tensor a, Tensor b) {
        float[] x = Tensors.toFloats(a), y = Tensors.toFloats(b);
        assertEquals(x.length, y.length);
        double m = 0;
        for (int i = 0; i < x.length; i++) m = Math.max(m, Math.abs((double) x[i] - y[i]));
        return m;
    }

    private static void expect(Executable body, String... fragments) {
        Throwable e = assertThrows(IllegalArgumentException.class, body);
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "message lacks '" + f + "': " + e.getMessage());
    }
}
