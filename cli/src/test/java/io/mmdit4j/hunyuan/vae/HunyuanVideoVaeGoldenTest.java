package io.mmdit4j.hunyuan.vae;

import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.Comparison;
import io.mmdit4j.golden.GoldenCase;
import io.mmdit4j.golden.GoldenRunner;
import io.mmdit4j.golden.HunyuanVideoVaeCases;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
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
import java.util.function.Consumer;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** AutoencoderKLHunyuanVideo decode against diffusers: outputs, intermediates, bf16, loading and input errors. */
class HunyuanVideoVaeGoldenTest {
    private static final Path ROOT = GoldenData.root().resolve("hunyuan_video_vae");
    private static final Path MODEL = ROOT.resolve("models/vae");
    private static final Path WEIGHTS = MODEL.resolve("diffusion_pytorch_model.safetensors");
    private static final Path CASE = ROOT.resolve("cases/decode_f3_4x6_b1");

    @TempDir
    Path tmp;

    @BeforeAll
    static void init() {
        assumeTrue(Files.isDirectory(MODEL), "golden HunyuanVideo VAE not found at " + MODEL.toAbsolutePath());
        Torch.init();
    }

    @Test
    void goldenCasePassesThroughTheRunnerAndTheRegisteredKind() {
        List<CaseResult> results = HunyuanVideoVaeCases.DECODE.run(GoldenCase.load(CASE));
        results.forEach(r -> System.out.println(r.line()));
        List<String> bad = results.stream().filter(r -> r.status() != CaseResult.Status.PASS).map(CaseResult::line).collect(Collectors.toList());
        assertTrue(bad.isEmpty(), String.join("\n", bad));
        assertEquals(List.of("decoder_input", "decoded", "video"), results.stream().map(CaseResult::output).collect(Collectors.toList()));

        List<CaseResult> viaRunner = new GoldenRunner().run(List.of(ROOT), r -> {});
        assertEquals(3, viaRunner.size());
        assertTrue(viaRunner.stream().allMatch(r -> r.status() == CaseResult.Status.PASS), viaRunner.toString());
    }

    @Test
    void intermediatesMatchTheDebugTensors() {
        Map<String, Tensor> seen = new LinkedHashMap<>();
        try (AutoencoderKLHunyuanVideo vae = AutoencoderKLHunyuanVideo.load(MODEL, DType.F32);
             SafetensorsFile in = SafetensorsFile.open(CASE.resolve("inputs.safetensors"));
             SafetensorsFile debug = SafetensorsFile.open(CASE.resolve("debug.safetensors"));
             SafetensorsFile out = SafetensorsFile.open(CASE.resolve("outputs.safetensors"));
             PointerScope scope = new PointerScope()) {
            Tensor z = vae.unscaleLatents(in.load("latents"));
            Tensor decoded = vae.decodeObserved(z, (name, t) -> seen.put(name, Tensors.keep(t.clone())));
            List<String> expectedNames = new ArrayList<>(debug.keys());
            assertTrue(seen.keySet().containsAll(expectedNames), "observed " + seen.keySet() + ", debug has " + expectedNames);
            for (String name : expectedNames) assertClose(name, seen.get(name), debug.load(name), 1e-4);
            assertClose("decoded", decoded, out.load("decoded"), 1e-4);
            // the observed path and the plain decode are the same computation
            assertTrue(org.bytedeco.pytorch.global.torch.equal(decoded, vae.decode(z)));
        } finally {
            Tensors.closeAll(seen.values());
        }
    }

    @Test
    void configOfTheGoldenFolderAndTheShippedModel() {
        HunyuanVideoVaeConfig tiny = HunyuanVideoVaeConfig.read(MODEL.resolve("config.json"));
        assertEquals(List.of(8, 16, 16, 16), tiny.blockOutChannels());
        assertEquals(1, tiny.layersPerBlock());
        assertEquals(4, tiny.normNumGroups());
        assertEquals(0.476986, tiny.scalingFactor());
        assertEquals(16, tiny.latentChannels());
        HunyuanVideoVaeConfig real = HunyuanVideoVaeConfig.hunyuanVideo();
        assertEquals(List.of(128, 256, 512, 512), real.blockOutChannels());
        assertEquals(2, real.layersPerBlock());
        assertEquals(32, real.normNumGroups());
        assertEquals(33, real.videoFrames(9));
        // up blocks: 0 spatial only, 1 and 2 spatial + temporal, 3 none (diffusers' rule for ratio 4)
        boolean[] space = new boolean[4], time = new boolean[4];
        for (int i = 0; i < 4; i++) {
            space[i] = real.upsamplesSpatially(i);
            time[i] = real.upsamplesTemporally(i);
        }
        assertArrayEquals(new boolean[] {true, true, true, false}, space);
        assertArrayEquals(new boolean[] {false, true, true, false}, time);
    }

    @Test
    void decoderKeyListMatchesTheCheckpointsDecoderHalf() {
        HunyuanVideoVaeConfig tiny = HunyuanVideoVaeConfig.read(MODEL.resolve("config.json"));
        Map<String, long[]> expected = AutoencoderKLHunyuanVideo.decoderShapes(tiny);
        try (SafetensorsFile f = SafetensorsFile.open(WEIGHTS)) {
            List<String> decoderKeys = f.keys().stream().filter(k -> !k.startsWith("encoder.") && !k.startsWith("quant_conv.")).sorted().collect(Collectors.toList());
            assertEquals(expected.keySet().stream().sorted().collect(Collectors.toList()), decoderKeys);
            long elements = 0;
            for (String k : decoderKeys) {
                assertArrayEquals(expected.get(k), f.info(k).shape(), k);
                elements += java.util.Arrays.stream(f.info(k).shape()).reduce(1, (a, b) -> a * b);
            }
            assertEquals(elements, AutoencoderKLHunyuanVideo.decoderParameterCount(tiny));
        }
    }

    @Test
    void bf16DecodeStaysCloseToFp32() {
        try (AutoencoderKLHunyuanVideo f32 = AutoencoderKLHunyuanVideo.load(MODEL, DType.F32);
             AutoencoderKLHunyuanVideo bf16 = AutoencoderKLHunyuanVideo.load(MODEL, null, DType.BF16, DeviceSpec.CPU);
             SafetensorsFile in = SafetensorsFile.open(CASE.resolve("inputs.safetensors"));
             PointerScope scope = new PointerScope()) {
            Tensor latents = in.load("latents");
            Tensor a = f32.decodeScaled(latents, AutoencoderKLHunyuanVideo.Tiling.NONE);
            Tensor b = bf16.decodeScaled(latents, AutoencoderKLHunyuanVideo.Tiling.NONE);
            assertEquals(DType.BF16, Tensors.dtype(b));
            assertArrayEquals(Tensors.shape(a), Tensors.shape(b));
            double maxAbs = maxAbs(a, b), meanAbs = meanAbs(a, b), range = maxAbs(a, a.mul(new org.bytedeco.pytorch.Scalar(0.0)));
            System.out.println("bf16 vs fp32: max_abs " + maxAbs + ", mean_abs " + meanAbs + ", output max |x| " + range);
            // bf16 keeps ~3 significant digits through ~20 conv layers (measured: max 0.07, mean 0.008 of outputs up to 3.8);
            // the bounds are those of the 2-D VAE test on the decoded (not the [0,1] image) scale
            assertTrue(maxAbs < 0.15 && meanAbs < 0.02, "bf16 too far from fp32: max_abs " + maxAbs + ", mean_abs " + meanAbs);
        }
    }

    // ---------------------------------------------------------------- errors

    @Test
    void badInputsGetClearErrors() {
        try (AutoencoderKLHunyuanVideo vae = AutoencoderKLHunyuanVideo.load(MODEL, DType.F32); PointerScope scope = new PointerScope()) {
            expect(IllegalArgumentException.class, () -> vae.decode(Tensors.fromFloats(new float[8 * 3 * 4 * 6], 1, 8, 3, 4, 6)),
                    "[1, 8, 3, 4, 6]", "expected [batch, 16, frames, height, width]");
            expect(IllegalArgumentException.class, () -> vae.decode(Tensors.fromFloats(new float[16 * 4 * 6], 1, 16, 4, 6)),
                    "[1, 16, 4, 6]", "frames");
            expect(IllegalArgumentException.class, () -> vae.decode(Tensors.fromFloats(new float[16 * 4 * 6], 1, 16, 1, 4, 6).to(ScalarType.Long)),
                    "floating-point");
            expect(IllegalArgumentException.class, () -> vae.decode(null), "null");
            expect(IllegalArgumentException.class, () -> vae.toVideo(Tensors.fromFloats(new float[12], 3, 4)), "[3, 4]");
            Tensor ok = Tensors.fromFloats(new float[16 * 2 * 4 * 6], 1, 16, 2, 4, 6);
            expect(IllegalArgumentException.class, () -> vae.decode(ok, new AutoencoderKLHunyuanVideo.Tiling(true, true, 4, 256, 16, 4, 192, 12)),
                    "at least 8");
            expect(IllegalArgumentException.class, () -> AutoencoderKLHunyuanVideo.Tiling.of(256, 256, 16, 300, 192, 12), "must not exceed");
        }
    }

    @Test
    void loadingErrorsNameTheFileTheKeyAndTheShapes() throws IOException {
        Path missing = folder("missing", m -> m.remove("decoder.up_blocks.1.resnets.0.conv2.conv.bias"));
        expect(ModelFormatException.class, () -> AutoencoderKLHunyuanVideo.load(missing, DType.F32).close(),
                "missing tensor 'decoder.up_blocks.1.resnets.0.conv2.conv.bias'", "[16]");
        Path shaped = folder("shaped", m -> m.put("decoder.conv_out.conv.weight", Tensors.fromFloats(new float[3 * 8 * 9], 3, 8, 1, 3, 3)));
        expect(ModelFormatException.class, () -> AutoencoderKLHunyuanVideo.load(shaped, DType.F32).close(),
                "'decoder.conv_out.conv.weight'", "[3, 8, 1, 3, 3]", "expected [3, 8, 3, 3, 3]");
        Path extra = folder("extra", m -> m.put("decoder.mid_block.attentions.1.to_q.weight", Tensors.fromFloats(new float[4], 2, 2)));
        expect(ModelFormatException.class, () -> AutoencoderKLHunyuanVideo.load(extra, DType.F32).close(),
                "unexpected tensor", "decoder.mid_block.attentions.1.to_q.weight");
        Path other = folder("other", m -> m.keySet().removeIf(k -> k.startsWith("decoder.conv_in")));
        expect(ModelFormatException.class, () -> AutoencoderKLHunyuanVideo.load(other, DType.F32).close(),
                "not an AutoencoderKLHunyuanVideo checkpoint", "decoder.conv_in.conv.weight");
        Path cfg = tmp.resolve("bad/config.json");
        Files.createDirectories(cfg.getParent());
        Files.writeString(cfg, "{\"_class_name\": \"AutoencoderKLHunyuanVideo\", \"temporal_compression_ratio\": 8}");
        expect(ModelFormatException.class, () -> HunyuanVideoVaeConfig.read(cfg), cfg.toString(), "temporal_compression_ratio 8");
        Files.writeString(cfg, "{\"_class_name\": \"AutoencoderKL\"}");
        expect(ModelFormatException.class, () -> HunyuanVideoVaeConfig.read(cfg), "_class_name", "AutoencoderKLHunyuanVideo");
        Files.writeString(cfg, "{\"up_block_types\": [\"UpDecoderBlock2D\", \"x\", \"y\", \"z\"]}");
        expect(ModelFormatException.class, () -> HunyuanVideoVaeConfig.read(cfg), "UpDecoderBlock2D", "HunyuanVideoUpBlock3D");
    }

    // ---------------------------------------------------------------- helpers

    /** A copy of the golden diffusers folder whose weights went through {@code edit}. */
    private Path folder(String name, Consumer<Map<String, Tensor>> edit) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(name));
        Files.copy(MODEL.resolve("config.json"), dir.resolve("config.json"));
        try (PointerScope scope = new PointerScope(); SafetensorsFile f = SafetensorsFile.open(WEIGHTS)) {
            Map<String, Tensor> all = new LinkedHashMap<>();
            for (String k : f.keys()) all.put(k, f.load(k));
            edit.accept(all);
            SafetensorsWriter.write(dir.resolve("diffusion_pytorch_model.safetensors"), all);
        }
        return dir;
    }

    static double maxAbs(Tensor a, Tensor b) {
        float[] x = Tensors.toFloats(a), y = Tensors.toFloats(b);
        assertEquals(x.length, y.length);
        double m = 0;
        for (int i = 0; i < x.length; i++) m = Math.max(m, Math.abs((double) x[i] - y[i]));
        return m;
    }

    static double meanAbs(Tensor a, Tensor b) {
        float[] x = Tensors.toFloats(a), y = Tensors.toFloats(b);
        double sum = 0;
        for (int i = 0; i < x.length; i++) sum += Math.abs((double) x[i] - y[i]);
        return sum / x.length;
    }

    private static void assertClose(String name, Tensor actual, Tensor expected, double tol) {
        Comparison c = Comparison.of(name, Tensors.toFloats(actual), Tensors.shape(actual), Tensors.toFloats(expected), Tensors.shape(expected), tol, tol);
        System.out.println(c.summary());
        assertTrue(c.pass(), c.summary());
    }

    private static void expect(Class<? extends Throwable> type, Executable body, String... fragments) {
        Throwable e = assertThrows(type, body);
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "message lacks '" + f + "': " + e.getMessage());
    }
}
