package io.mmdit4j.cli;

import io.mmdit4j.GoldenData;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.io.CheckpointFiles;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.io.gguf.GgufFile;
import io.mmdit4j.io.quant.CheckpointQuantizer;
import io.mmdit4j.lora.LoraAdapter;
import io.mmdit4j.lora.LoraReport;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Quantized checkpoints in use: LoRAs on a quantized base (a separate low-rank term, equal to merging into the dequantized
 * weights), {@code generate} from a GGUF file with {@code --vae} and {@code --text-encoders} as from the BFL file, and a
 * GGUF file changed on disk after loading refused before any page of it is read.
 */
class QuantizedPipelineTest {
    private static final int[] AXES = {4, 6, 6};
    private static final Path LORAS = GoldenData.root().resolve("lora/loras");
    private static final Path GGUF = GoldenData.root().resolve("gguf/models/schnell-bf16/flux1-schnell-bf16-Q5_0.gguf");

    @TempDir
    Path tmp;

    private static FluxInputs inputs(SafetensorsFile in) {
        return new FluxInputs(in.load("hidden_states"), in.load("encoder_hidden_states"), in.load("pooled_projections"), in.load("timestep"),
                null, in.load("img_ids"), in.load("txt_ids"));
    }

    /** The checkpoint's tensors dequantized and stored plainly in fp32 under the same (BFL) names. */
    private Path dequantized(Path gguf) {
        Path out = tmp.resolve("dequantized.safetensors");
        Map<String, Tensor> plain = new LinkedHashMap<>();
        try (TensorSource s = WeightFiles.open(gguf); PointerScope scope = new PointerScope()) {
            for (String k : s.keys()) plain.put(k, s.load(k).to(ScalarType.Float));
            SafetensorsWriter.write(out, plain);
        }
        return out;
    }

    private static double maxRel(Tensor a, Tensor b) {
        return a.sub(b).abs().max().item_float() / b.abs().max().item_float();
    }

    @Test
    void loraOnAQuantizedBaseEqualsTheLoraMergedIntoItsDequantizedWeights() {
        Path plain = dequantized(GGUF);
        for (String file : new String[] {"flux_kohya_r4.safetensors", "flux_peft_r4.safetensors"}) {
            try (FluxTransformer q = FluxTransformer.load(GGUF, DType.F32, AXES); FluxTransformer p = FluxTransformer.load(plain, DType.F32, AXES);
                 LoraAdapter lora = LoraAdapter.read(LORAS.resolve(file));
                 SafetensorsFile in = SafetensorsFile.open(GoldenData.root().resolve("lora/cases/flux_peft_scale1/inputs.safetensors"));
                 PointerScope scope = new PointerScope()) {
                FluxInputs x = inputs(in);
                Tensor before = q.forward(x);
                LoraReport rq = lora.applyTo(q, 0.8, true);
                LoraReport rp = lora.applyTo(p, 0.8, true);
                assertEquals(rp.targets(), rq.targets());
                Linear target = rq.targets().stream().map(q.linears()::get).filter(Linear::isQuantized).findFirst().orElseThrow();
                assertEquals(1, target.lowRanks().size(), "a quantized Linear gets a low-rank term, not a merge");
                Tensor withQ = q.forward(x), withP = p.forward(x);
                assertTrue(maxRel(withQ, withP) < 1e-5, file + ": low-rank vs merged " + maxRel(withQ, withP));
                assertTrue(maxRel(withQ, before) > 1e-3, "the LoRA changes the output");
                lora.applyTo(q, 0.3, true);
                lora.applyTo(p, 0.3, true);
                assertTrue(maxRel(q.forward(x), p.forward(x)) < 1e-5, "rescaled");
                assertTrue(lora.removeFrom(q));
                assertTrue(q.forward(x).equal(before), "removed: bit-identical to the quantized base");
                assertTrue(target.lowRanks().isEmpty());
            }
        }
    }

    @Test
    void generateFromAGgufFileWorksLikeTheBflFile() throws IOException {
        Path folder = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-schnell");
        Path bfl = GoldenData.fluxModel("schnell").resolve("flux1-tiny-schnell.safetensors");
        Path gguf = tmp.resolve("flux1-tiny-schnell-Q8_0.gguf");
        CheckpointQuantizer.quantize(bfl, CheckpointQuantizer.Target.Q8_0, gguf, CheckpointQuantizer.Options.defaults());
        Files.copy(bfl.resolveSibling("bfl_params.json"), tmp.resolve("bfl_params.json")); // the tiny model's RoPE axes, as beside the BFL file
        LoadOptions parts = LoadOptions.builder().vae(folder.resolve("vae")).textEncoders(folder).build();
        GenerationRequest r = GenerationRequest.builder().prompt("a cat").size(64, 64).steps(2).seed(1).maxSequenceLength(16).build();
        try (Pipeline a = Pipelines.load(gguf, parts); Pipeline b = Pipelines.load(bfl, parts);
             GenerationResult ia = a.generate(r); GenerationResult ib = b.generate(r); PointerScope scope = new PointerScope()) {
            assertEquals("flux", a.family().name());
            double mean = ia.images().sub(ib.images()).abs().mean().item_float();
            assertTrue(mean < 0.02, "Q8_0 images differ from the bf16 ones by " + mean + " on average");
        }
        Path out = tmp.resolve("gguf.png");
        CheckGoldenCommandTest.Run run = CheckGoldenCommandTest.run("generate", "--model", gguf.toString(), "--vae", folder.resolve("vae").toString(),
                "--text-encoders", folder.toString(), "--prompt", "a fox", "--width", "32", "--height", "32", "--steps", "1",
                "--max-sequence-length", "16", "--out", out.toString());
        assertEquals(0, run.exit(), run.err());
        assertTrue(Files.isRegularFile(out));
    }

    @Test
    void aGgufFileChangedOnDiskIsRefusedBeforeItsPagesAreRead() throws IOException {
        Path copy = tmp.resolve("copy.gguf");
        Files.copy(GGUF, copy);
        CheckpointFiles files = new CheckpointFiles(true);
        try (FluxTransformer m = files.load(() -> FluxTransformer.load(copy, DType.F32, AXES))) {
            assertEquals(1, files.files().size(), "the GGUF file is listed");
            files.requireUnchanged();
            Files.write(copy, new byte[] {1, 2, 3}, java.nio.file.StandardOpenOption.APPEND);
            ModelFormatException e = assertThrows(ModelFormatException.class, files::requireUnchanged);
            assertTrue(e.getMessage().startsWith(copy + ": the checkpoint changed on disk since it was opened"), e.getMessage());
        }
        try (GgufFile f = GgufFile.open(copy)) {
            Files.write(copy, new byte[] {4}, java.nio.file.StandardOpenOption.APPEND);
            assertThrows(ModelFormatException.class, () -> f.quantized(f.keys().stream().filter(k -> f.info(k).quantized()).findFirst().orElseThrow()));
        }
    }

    @Test
    void aModelFolderQuantizedToAFolderLoadsLikeTheOriginal() throws IOException {
        Path folder = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-schnell");
        Path out = tmp.resolve("flux-tiny-schnell-Q8_0");
        CheckGoldenCommandTest.Run run = CheckGoldenCommandTest.run("quantize", "--model", folder.toString(), "--type", "q8_0", "--out", out.toString());
        assertEquals(0, run.exit(), run.err());
        assertTrue(Files.isRegularFile(out.resolve("transformer/diffusion_pytorch_model.gguf")));
        assertTrue(Files.isSymbolicLink(out.resolve("vae")) && Files.isSymbolicLink(out.resolve("model_index.json")), "the other components are links");
        GenerationRequest r = GenerationRequest.builder().prompt("a cat").size(64, 64).steps(2).seed(1).maxSequenceLength(16).build();
        try (Pipeline a = Pipelines.load(out, LoadOptions.defaults()); Pipeline b = Pipelines.load(folder, LoadOptions.defaults());
             GenerationResult ia = a.generate(r); GenerationResult ib = b.generate(r); PointerScope scope = new PointerScope()) {
            assertEquals("flux", a.family().name());
            double mean = ia.images().sub(ib.images()).abs().mean().item_float();
            assertTrue(mean < 0.02, "Q8_0 images differ from the original's by " + mean + " on average");
        }
        // written again into the same folder: the links are kept; a real file in the way is refused
        run = CheckGoldenCommandTest.run("quantize", "--model", folder.toString(), "--type", "q4_0", "--out", out.toString(), "--overwrite");
        assertEquals(0, run.exit(), run.err());
        Path other = tmp.resolve("occupied");
        Files.createDirectories(other.resolve("vae"));
        run = CheckGoldenCommandTest.run("quantize", "--model", folder.toString(), "--type", "q8_0", "--out", other.toString());
        assertEquals(2, run.exit(), run.err());
        assertTrue(run.err().contains("is not a link to"), run.err());
    }
}
