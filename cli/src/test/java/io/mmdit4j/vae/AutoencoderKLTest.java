package io.mmdit4j.vae;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenCase;
import io.mmdit4j.golden.VaeCases;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.equal;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** AutoencoderKL against diffusers' outputs, both checkpoint layouts, tiling, bf16, and loading/input errors. */
class AutoencoderKLTest {
    private static final Path VAE = GoldenData.root().resolve("vae");
    private static final Path MODEL = VAE.resolve("models/vae");
    private static final Path WEIGHTS = MODEL.resolve("diffusion_pytorch_model.safetensors");
    private static final Path DECODE_CASE = VAE.resolve("cases/decode_8x12_b2");
    private static final Path ENCODE_CASE = VAE.resolve("cases/encode");

    @TempDir
    Path tmp;

    @BeforeAll
    static void init() {
        assumeTrue(Files.isDirectory(MODEL), "golden VAE not found at " + MODEL.toAbsolutePath());
        Torch.init();
    }

    // ---------------------------------------------------------------- golden cases

    @Test
    void goldenDecodeAndEncodeCasesPass() {
        List<CaseResult> results = new java.util.ArrayList<>(VaeCases.DECODE.run(GoldenCase.load(DECODE_CASE)));
        results.addAll(VaeCases.ENCODE.run(GoldenCase.load(ENCODE_CASE)));
        results.forEach(r -> System.out.println(r.line()));
        List<String> bad = results.stream().filter(r -> r.status() != CaseResult.Status.PASS).map(CaseResult::line).collect(Collectors.toList());
        assertTrue(bad.isEmpty(), String.join("\n", bad));
        assertEquals(List.of("decoder_input", "decoded", "image", "mean", "std", "normalized_mean"),
                results.stream().map(CaseResult::output).collect(Collectors.toList()));
    }

    @Test
    void goldenDecodeCaseAlsoPassesFromABflCheckpointNamedInTheCase() throws IOException {
        // A copy of the case whose model is a BFL/LDM ae.safetensors (config from the case's "config" section).
        Path caseDir = Files.createDirectories(tmp.resolve("case"));
        for (String f : new String[] {"inputs.safetensors", "outputs.safetensors"}) Files.copy(DECODE_CASE.resolve(f), caseDir.resolve(f));
        writeBfl(tmp.resolve("ae.safetensors"), null);
        ObjectMapper json = new ObjectMapper();
        ObjectNode spec = (ObjectNode) json.readTree(DECODE_CASE.resolve("case.json").toFile());
        ((ObjectNode) spec.get("model")).put("diffusers_folder", MODEL.toAbsolutePath().toString());
        ((ObjectNode) spec.get("model")).put("bfl_checkpoint", "../ae.safetensors");
        Files.writeString(caseDir.resolve("case.json"), json.writeValueAsString(spec));
        List<CaseResult> results = VaeCases.DECODE.run(GoldenCase.load(caseDir));
        assertTrue(results.stream().allMatch(r -> r.status() == CaseResult.Status.PASS), results.toString());
        assertEquals(6, results.size());
        assertTrue(results.stream().anyMatch(r -> r.caseName().endsWith("[bfl]")));
    }

    // ---------------------------------------------------------------- configs

    @Test
    void configsOfTheReleasedVaesAndOfTheGoldenFolder() {
        VaeConfig flux = VaeConfig.flux();
        assertArrayEquals(new int[] {128, 256, 512, 512}, flux.blockOutChannels());
        assertEquals(16, flux.latentChannels());
        assertEquals(8, flux.scaleFactor());
        assertEquals(0.3611, flux.scalingFactor());
        assertEquals(0.1159, flux.shiftFactor());
        assertFalse(flux.useQuantConv() || flux.usePostQuantConv());
        assertEquals(128, flux.defaultTileLatent());
        assertEquals(32, flux.defaultOverlapLatent());
        VaeConfig sd3 = VaeConfig.sd3();
        assertEquals(1.5305, sd3.scalingFactor());
        assertEquals(0.0609, sd3.shiftFactor());
        assertArrayEquals(flux.blockOutChannels(), sd3.blockOutChannels());

        VaeConfig tiny = VaeConfig.read(MODEL.resolve("config.json"));
        assertArrayEquals(new int[] {8, 16, 16, 16}, tiny.blockOutChannels());
        assertEquals(1, tiny.layersPerBlock());
        assertEquals(4, tiny.normNumGroups());
        assertEquals(0.3611, tiny.scalingFactor());
        assertEquals(0.1159, tiny.shiftFactor());
        assertTrue(tiny.midBlockAddAttention());
        assertEquals(tiny, AutoencoderKL.inspect(MODEL));

        // diffusers' defaults for fields a config leaves out (SD 1.x-era configs): quant convs on, no shift
        VaeConfig old = VaeConfig.fromJson(new ObjectMapper().createObjectNode().put("latent_channels", 4), "old");
        assertTrue(old.useQuantConv() && old.usePostQuantConv());
        assertNull(old.shiftFactor());
        assertEquals(0.18215, old.scalingFactor());
    }

    @Test
    void configErrorsNameTheFileAndTheField() throws IOException {
        Path cfg = tmp.resolve("config.json");
        Files.writeString(cfg, "{\"_class_name\": \"FluxTransformer2DModel\"}");
        expect(ModelFormatException.class, () -> VaeConfig.read(cfg), cfg.toString(), "_class_name", "AutoencoderKL");
        Files.writeString(cfg, "{\"block_out_channels\": [8, 16], \"norm_num_groups\": 32}");
        expect(ModelFormatException.class, () -> VaeConfig.read(cfg), cfg.toString(), "[8, 16]", "norm_num_groups 32");
        Files.writeString(cfg, "{\"block_out_channels\": [8, 16], \"norm_num_groups\": 4, \"up_block_types\": [\"UpDecoderBlock2D\"]}");
        expect(ModelFormatException.class, () -> VaeConfig.read(cfg), "up_block_types", "2 blocks");
        Files.writeString(cfg, "{\"act_fn\": \"gelu\"}");
        expect(ModelFormatException.class, () -> VaeConfig.read(cfg), "act_fn", "gelu");
    }

    // ---------------------------------------------------------------- BFL / LDM layout

    @Test
    void bflLayoutGivesBitIdenticalOutputsAndItsConfigIsDetected() throws IOException {
        Path ae = writeBfl(tmp.resolve("ae.safetensors"), null);
        VaeConfig golden = VaeConfig.read(MODEL.resolve("config.json"));
        try (SafetensorsFile f = SafetensorsFile.open(ae)) {
            StateDict raw = StateDict.of(f);
            assertTrue(VaeKeyMap.isLdm(raw));
            VaeConfig detected = VaeConfig.detect(VaeKeyMap.toDiffusers(raw), 4);
            assertArrayEquals(golden.blockOutChannels(), detected.blockOutChannels());
            assertEquals(golden.latentChannels(), detected.latentChannels());
            assertEquals(golden.layersPerBlock(), detected.layersPerBlock());
            assertEquals(golden.inChannels(), detected.inChannels());
            assertEquals(golden.outChannels(), detected.outChannels());
            assertEquals(golden.scalingFactor(), detected.scalingFactor(), "16 latent channels: FLUX scaling");
            assertEquals(golden.shiftFactor(), detected.shiftFactor());
            assertFalse(detected.useQuantConv() || detected.usePostQuantConv());
            assertTrue(detected.midBlockAddAttention());
        }
        // The tiny model's 4 GroupNorm groups cannot be seen in the weights: without a config the file is refused clearly.
        expect(ModelFormatException.class, () -> AutoencoderKL.load(ae, DType.F32).close(), ae.toString(), "norm_num_groups", "VaeConfig");

        try (AutoencoderKL diffusers = AutoencoderKL.load(MODEL, DType.F32);
             AutoencoderKL bfl = AutoencoderKL.load(ae, golden, DType.F32, DeviceSpec.CPU);
             PointerScope scope = new PointerScope()) {
            assertEquals(diffusers.config(), bfl.config());
            Tensor latents = input(DECODE_CASE, "latents");
            assertTrue(equal(diffusers.decodeScaled(latents), bfl.decodeScaled(latents)), "decode: BFL and diffusers layouts must be bit-identical");
            Tensor image = input(ENCODE_CASE, "image");
            try (AutoencoderKL.Encoded a = diffusers.encode(image); AutoencoderKL.Encoded b = bfl.encode(image)) {
                assertTrue(equal(a.mean(), b.mean()) && equal(a.std(), b.std()), "encode: BFL and diffusers layouts must be bit-identical");
            }
        }

        // A config.json describing an AutoencoderKL beside the single file is used (as in a diffusers vae/ folder).
        Files.copy(MODEL.resolve("config.json"), tmp.resolve("config.json"));
        assertEquals(golden, AutoencoderKL.inspect(ae));
        assertEquals(golden, AutoencoderKL.inspect(tmp), "a folder with config.json and a BFL-named weight file");
    }

    @Test
    void vaePartOfAWholePipelineSingleFileLoads() throws IOException {
        Path file = tmp.resolve("sd3_like.safetensors");
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> bfl = bflTensors(readAll(WEIGHTS));
            Map<String, Tensor> all = new LinkedHashMap<>();
            bfl.forEach((k, v) -> all.put("first_stage_model." + k, v));
            all.put("model.diffusion_model.x_embedder.proj.weight", Tensors.fromFloats(new float[4], 2, 2));
            SafetensorsWriter.write(file, all);
        }
        try (AutoencoderKL whole = AutoencoderKL.load(file, VaeConfig.read(MODEL.resolve("config.json")), DType.F32, DeviceSpec.CPU);
             AutoencoderKL diffusers = AutoencoderKL.load(MODEL, DType.F32);
             PointerScope scope = new PointerScope()) {
            Tensor latents = input(DECODE_CASE, "latents");
            assertTrue(equal(whole.decode(latents), diffusers.decode(latents)));
        }
    }

    @Test
    void modelFolderWithAVaeSubfolderLoads() throws IOException {
        Path vae = Files.createDirectories(tmp.resolve("pipeline/vae"));
        Files.copy(MODEL.resolve("config.json"), vae.resolve("config.json"));
        Files.copy(WEIGHTS, vae.resolve("diffusion_pytorch_model.safetensors"));
        assertEquals(VaeConfig.read(MODEL.resolve("config.json")), AutoencoderKL.inspect(tmp.resolve("pipeline")));
    }

    // ---------------------------------------------------------------- tiling

    @Test
    void tiledDecodeCutsAndBlendsTilesLikeDiffusers() {
        try (AutoencoderKL vae = AutoencoderKL.load(MODEL, DType.F32); PointerScope scope = new PointerScope()) {
            Generator g = createCPUGenerator(7);
            Tensor latents = randn(new long[] {1, 16, 20, 28}, new GeneratorOptional(g), new TensorOptions(ScalarType.Float));
            int tile = 8, overlap = 2, f = 8, blend = overlap * f, rowLimit = tile * f - blend;
            Tensor full = vae.decode(latents);
            Tensor tiled = vae.decodeTiled(latents, tile, overlap);
            assertArrayEquals(new long[] {1, 3, 160, 224}, Tensors.shape(tiled));

            // Tile (0,0) is never blended: its crop is the decode of the first tile alone.
            Tensor t00 = vae.decode(latents.narrow(2, 0, tile).narrow(3, 0, tile));
            assertTrue(equal(tiled.narrow(2, 0, rowLimit).narrow(3, 0, rowLimit), t00.narrow(2, 0, rowLimit).narrow(3, 0, rowLimit)));
            // Tile (0,1) starts at latent column 6: blended linearly with tile (0,0) over its first 16 pixel columns.
            Tensor t01 = vae.decode(latents.narrow(2, 0, tile).narrow(3, tile - overlap, tile));
            float[] out = Tensors.toFloats(tiled.narrow(2, 0, rowLimit).narrow(3, rowLimit, blend).contiguous());
            float[] left = Tensors.toFloats(t00.narrow(2, 0, rowLimit).narrow(3, tile * f - blend, blend).contiguous());
            float[] right = Tensors.toFloats(t01.narrow(2, 0, rowLimit).narrow(3, 0, blend).contiguous());
            for (int i = 0; i < out.length; i++) {
                int x = i % blend;
                double expected = left[i] * (float) (1 - (double) x / blend) + right[i] * (float) ((double) x / blend);
                assertEquals(expected, out[i], 1e-5, "blended pixel " + i);
            }
            float[] rest = Tensors.toFloats(tiled.narrow(2, 0, rowLimit).narrow(3, rowLimit + blend, rowLimit - blend).contiguous());
            float[] own = Tensors.toFloats(t01.narrow(2, 0, rowLimit).narrow(3, blend, rowLimit - blend).contiguous());
            assertArrayEquals(own, rest, "beyond the overlap a tile is its own decode");

            // A tile covering the whole latent is the untiled decode, bit for bit (as in diffusers).
            assertTrue(equal(full, vae.decodeTiled(latents, 28, 4)));
            assertTrue(equal(full, vae.decodeTiled(latents, 32, 0)));
            expect(IllegalArgumentException.class, () -> vae.decodeTiled(latents, 8, 8), "overlap");
        }
    }

    @Test
    void tiledDecodeOfALargerLatentIsLooselyCloseToTheUntiledDecode() {
        try (AutoencoderKL vae = AutoencoderKL.load(MODEL, DType.F32); PointerScope scope = new PointerScope()) {
            Generator g = createCPUGenerator(8);
            Tensor latents = randn(new long[] {1, 16, 40, 56}, new GeneratorOptional(g), new TensorOptions(ScalarType.Float));
            Tensor full = vae.decode(latents);
            // Tiling changes the numerics (per-tile GroupNorm statistics and attention): with this tiny random model the
            // relative L2 error is ~0.1 for 32-latent tiles and shrinks as tiles grow; seams are blended, never missing.
            double[] big = relativeError(full, vae.decodeTiled(latents, 32, 8));
            double[] small = relativeError(full, vae.decodeTiled(latents, 16, 4));
            System.out.printf(Locale.ROOT, "tiled vs untiled (latent 40x56): tile 32/8 rel_l2=%.3g mean_abs=%.3g; tile 16/4 rel_l2=%.3g mean_abs=%.3g%n",
                    big[0], big[1], small[0], small[1]);
            assertTrue(big[0] > 0, "tiles smaller than the latent must change the result");
            assertTrue(big[0] < 0.2 && big[1] < 0.1, "tile 32: rel_l2 " + big[0] + ", mean_abs " + big[1]);
            assertTrue(big[0] < small[0], "larger tiles must be closer to the untiled decode");
        }
    }

    private static double[] relativeError(Tensor reference, Tensor actual) {
        assertArrayEquals(Tensors.shape(reference), Tensors.shape(actual));
        float[] a = Tensors.toFloats(reference), b = Tensors.toFloats(actual);
        double sq = 0, norm = 0, sum = 0;
        for (int i = 0; i < a.length; i++) {
            double d = a[i] - b[i];
            sq += d * d;
            norm += (double) a[i] * a[i];
            sum += Math.abs(d);
        }
        return new double[] {Math.sqrt(sq / norm), sum / a.length};
    }

    // ---------------------------------------------------------------- bf16

    @Test
    void bf16ComputeRunsAndStaysCloseToFp32() {
        try (AutoencoderKL f32 = AutoencoderKL.load(MODEL, DType.F32); AutoencoderKL bf16 = AutoencoderKL.load(MODEL, DType.BF16);
             PointerScope scope = new PointerScope()) {
            assertEquals(DType.BF16, bf16.dtype());
            Tensor latents = input(DECODE_CASE, "latents");
            Tensor a = f32.toImage(f32.decodeScaled(latents));
            Tensor b = bf16.toImage(bf16.decodeScaled(latents.to(ScalarType.BFloat16)));
            assertEquals(DType.BF16, Tensors.dtype(b));
            double[] d = diff(a, b);
            System.out.printf(Locale.ROOT, "bf16 vs fp32 image: max_abs=%.3g mean_abs=%.3g%n", d[0], d[1]);
            assertTrue(d[0] < 0.08 && d[1] < 0.01, "bf16 image too far from fp32: max_abs " + d[0] + ", mean_abs " + d[1]);

            Tensor image = input(ENCODE_CASE, "image");
            try (AutoencoderKL.Encoded x = f32.encode(image); AutoencoderKL.Encoded y = bf16.encode(image)) {
                assertEquals(DType.BF16, Tensors.dtype(y.mean()));
                double[] m = diff(x.mean(), y.mean());
                System.out.printf(Locale.ROOT, "bf16 vs fp32 posterior mean: max_abs=%.3g mean_abs=%.3g%n", m[0], m[1]);
                assertTrue(m[0] < 0.1 && m[1] < 0.02, "bf16 mean too far from fp32: " + m[0] + ", " + m[1]);
            }
        }
    }

    // ---------------------------------------------------------------- errors

    @Test
    void nonVaeCheckpointsAreRefusedNamingFileAndKey() {
        Path flux = GoldenData.root().resolve("flux_transformer/models/schnell/transformer");
        assumeTrue(Files.isDirectory(flux));
        expect(ModelFormatException.class, () -> AutoencoderKL.load(flux, DType.F32).close(),
                "diffusion_pytorch_model.safetensors", "not an AutoencoderKL checkpoint", "'decoder.conv_in.weight'");
        expect(ModelFormatException.class, () -> AutoencoderKL.load(tmp.resolve("nothing-here"), DType.F32).close(), "nothing-here");
    }

    @Test
    void wrongMissingAndUnexpectedTensorsAreReported() throws IOException {
        Path wrong = copyOfModel("wrong", m -> m.put("decoder.conv_out.weight", Tensors.fromFloats(new float[3 * 8], 3, 8, 1, 1)));
        expect(ModelFormatException.class, () -> AutoencoderKL.load(wrong, DType.F32).close(),
                wrong.toString(), "'decoder.conv_out.weight'", "[3, 8, 1, 1]", "expected [3, 8, 3, 3]");
        Path missing = copyOfModel("missing", m -> m.remove("encoder.conv_out.bias"));
        expect(ModelFormatException.class, () -> AutoencoderKL.load(missing, DType.F32).close(),
                missing.toString(), "missing tensor 'encoder.conv_out.bias'", "[32]");
        Path extra = copyOfModel("extra", m -> m.put("post_quant_conv.weight", Tensors.fromFloats(new float[256], 16, 16, 1, 1)));
        expect(ModelFormatException.class, () -> AutoencoderKL.load(extra, DType.F32).close(), extra.toString(), "unexpected", "'post_quant_conv.weight'");

        // In the BFL layout the message also names the original key.
        Path ae = writeBfl(tmp.resolve("bad_ae.safetensors"),
                m -> m.put("decoder.up.3.block.0.conv1.weight", Tensors.fromFloats(new float[16 * 16], 16, 16, 1, 1)));
        expect(ModelFormatException.class,
                () -> AutoencoderKL.load(ae, VaeConfig.read(MODEL.resolve("config.json")), DType.F32, DeviceSpec.CPU).close(),
                ae.toString(), "'decoder.up_blocks.0.resnets.0.conv1.weight'", "(from 'decoder.up.3.block.0.conv1.weight')", "[16, 16, 1, 1]",
                "expected [16, 16, 3, 3]");
    }

    @Test
    void badInputsAreIllegalArguments() {
        try (AutoencoderKL vae = AutoencoderKL.load(MODEL, DType.F32); PointerScope scope = new PointerScope()) {
            Tensor fourChannels = Tensors.fromFloats(new float[4 * 8 * 8], 1, 4, 8, 8);
            expect(IllegalArgumentException.class, () -> vae.decode(fourChannels), "latents", "[1, 4, 8, 8]", "[batch, 16, height, width]");
            expect(IllegalArgumentException.class, () -> vae.decodeScaled(fourChannels), "[1, 4, 8, 8]");
            expect(IllegalArgumentException.class, () -> vae.decodeTiled(fourChannels, 4, 1), "[1, 4, 8, 8]");
            expect(IllegalArgumentException.class, () -> vae.decode(Tensors.fromFloats(new float[16 * 64], 16, 8, 8)), "[16, 8, 8]");
            expect(IllegalArgumentException.class, () -> vae.encode(fourChannels), "image", "[batch, 3, height, width]");
            Tensor ints = Tensors.fromFloats(new float[16 * 4], 1, 16, 2, 2).to(ScalarType.Long);
            expect(IllegalArgumentException.class, () -> vae.decode(ints), "floating-point");
        }
    }

    // ---------------------------------------------------------------- helpers

    private static double[] diff(Tensor a, Tensor b) {
        float[] x = Tensors.toFloats(a), y = Tensors.toFloats(b);
        double max = 0, sum = 0;
        for (int i = 0; i < x.length; i++) {
            double d = Math.abs(x[i] - y[i]);
            max = Math.max(max, d);
            sum += d;
        }
        return new double[] {max, sum / x.length};
    }

    private static Tensor input(Path caseDir, String name) {
        try (SafetensorsFile in = SafetensorsFile.open(caseDir.resolve("inputs.safetensors"))) {
            return in.load(name);
        }
    }

    /** All tensors of a file (views of its mapping; they outlive the reader). Call inside a PointerScope. */
    private static Map<String, Tensor> readAll(Path file) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String k : f.keys()) m.put(k, f.load(k));
        }
        return m;
    }

    /** A copy of the golden diffusers folder whose weights went through {@code edit}. */
    private Path copyOfModel(String name, Consumer<Map<String, Tensor>> edit) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(name));
        Files.copy(MODEL.resolve("config.json"), dir.resolve("config.json"));
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> all = readAll(WEIGHTS);
            edit.accept(all);
            SafetensorsWriter.write(dir.resolve("diffusion_pytorch_model.safetensors"), all);
        }
        return dir;
    }

    /** The golden diffusers weights in the BFL/LDM {@code ae.safetensors} layout (MODEL-SPEC G.5, inverted). */
    private static Path writeBfl(Path file, Consumer<Map<String, Tensor>> edit) {
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> bfl = bflTensors(readAll(WEIGHTS));
            if (edit != null) edit.accept(bfl);
            SafetensorsWriter.write(file, bfl);
        }
        return file;
    }

    private static final Pattern UP = Pattern.compile("^decoder\\.up_blocks\\.(\\d+)\\.(resnets\\.(\\d+)|upsamplers\\.0)\\.(.*)$");
    private static final Pattern DOWN = Pattern.compile("^encoder\\.down_blocks\\.(\\d+)\\.(resnets\\.(\\d+)|downsamplers\\.0)\\.(.*)$");
    private static final Pattern MID = Pattern.compile("^(encoder|decoder)\\.mid_block\\.(resnets\\.(\\d)|attentions\\.0)\\.(.*)$");

    private static Map<String, Tensor> bflTensors(Map<String, Tensor> diffusers) {
        int upBlocks = 4;
        Map<String, Tensor> out = new LinkedHashMap<>();
        diffusers.forEach((k, t) -> {
            String name = k;
            Tensor value = t;
            Matcher m;
            if ((m = UP.matcher(k)).matches()) {
                String p = "decoder.up." + (upBlocks - 1 - Integer.parseInt(m.group(1))) + ".";
                name = m.group(3) != null ? p + "block." + m.group(3) + "." + ldmResnet(m.group(4)) : p + "upsample." + m.group(4);
            } else if ((m = DOWN.matcher(k)).matches()) {
                String p = "encoder.down." + m.group(1) + ".";
                name = m.group(3) != null ? p + "block." + m.group(3) + "." + ldmResnet(m.group(4)) : p + "downsample." + m.group(4);
            } else if ((m = MID.matcher(k)).matches()) {
                String p = m.group(1) + ".mid.";
                if (m.group(3) != null) {
                    name = p + "block_" + (Integer.parseInt(m.group(3)) + 1) + "." + ldmResnet(m.group(4));
                } else {
                    String rest = m.group(4)
                            .replaceFirst("^group_norm\\.", "norm.").replaceFirst("^to_q\\.", "q.").replaceFirst("^to_k\\.", "k.")
                            .replaceFirst("^to_v\\.", "v.").replaceFirst("^to_out\\.0\\.", "proj_out.");
                    name = p + "attn_1." + rest;
                    if (t.dim() == 2 && !rest.startsWith("norm.")) value = t.view(t.size(0), t.size(1), 1, 1); // 1x1 conv weights
                }
            } else {
                name = k.replace(".conv_norm_out.", ".norm_out.");
            }
            out.put(name, value);
        });
        return out;
    }

    private static String ldmResnet(String rest) {
        return rest.startsWith("conv_shortcut.") ? "nin_shortcut." + rest.substring("conv_shortcut.".length()) : rest;
    }

    private static <T extends Throwable> T expect(Class<T> type, Executable e, String... fragments) {
        T ex = assertThrows(type, e);
        String m = ex.getMessage();
        assertTrue(m != null, "exception without message: " + ex);
        for (String f : fragments) assertTrue(m.contains(f), () -> "message should contain '" + f + "': " + m);
        return ex;
    }
}
