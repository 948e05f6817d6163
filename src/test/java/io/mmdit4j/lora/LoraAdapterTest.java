package io.mmdit4j.lora;

import io.mmdit4j.GoldenData;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sd3.Sd3Transformer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Applying, unloading, rescaling and stacking LoRAs on the tiny FLUX model; loud failures on foreign or mis-shaped keys. */
class LoraAdapterTest {
    private static final Path LORAS = GoldenData.root().resolve("lora/loras");
    private static final Path MODEL = GoldenData.fluxModel("schnell").resolve("transformer");

    private static SafetensorsFile inputsFile;
    private static FluxInputs inputs;

    @BeforeAll
    static void inputs() {
        inputsFile = SafetensorsFile.open(GoldenData.root().resolve("lora/cases/flux_peft_scale1/inputs.safetensors"));
        SafetensorsFile in = inputsFile;
        inputs = new FluxInputs(Tensors.keep(in.load("hidden_states")), Tensors.keep(in.load("encoder_hidden_states")),
                Tensors.keep(in.load("pooled_projections")), Tensors.keep(in.load("timestep")), null, Tensors.keep(in.load("img_ids")),
                Tensors.keep(in.load("txt_ids")));
    }

    @AfterAll
    static void close() {
        inputsFile.close();
    }

    @Test
    void unloadRestoresTheOriginalWeightsAndBitIdenticalOutputs() {
        try (FluxTransformer model = FluxTransformer.load(MODEL, DType.F32); LoraAdapter lora = LoraAdapter.read(LORAS.resolve("flux_kohya_r4.safetensors"));
             PointerScope scope = new PointerScope()) {
            Map<String, Tensor> before = weights(model);
            Tensor plain = model.forward(inputs);
            LoraReport r = lora.applyTo(model, 1.0, true);
            assertEquals(29, r.matchedModules().size());
            assertEquals(46, r.targets().size());
            assertTrue(r.unmatchedKeys().isEmpty());
            assertSame(before.get("x_embedder"), model.linears().get("x_embedder").weight(), "untargeted weights stay file views");
            assertNotSame(before.get("transformer_blocks.0.attn.to_q"), model.linears().get("transformer_blocks.0.attn.to_q").weight());
            Tensor merged = model.forward(inputs);
            assertFalse(equal(plain, merged), "the LoRA changes the output");
            assertEquals(1.0, lora.scaleIn(model));
            Tensor mergedWeight = model.linears().get("transformer_blocks.0.attn.to_q").weight();

            assertTrue(lora.removeFrom(model));
            assertTrue(mergedWeight.isNull(), "the merged weight is freed on unloading");
            assertFalse(lora.removeFrom(model), "removing twice is a no-op");
            weights(model).forEach((k, w) -> assertSame(before.get(k), w, k + " is the original tensor again"));
            assertTrue(equal(plain, model.forward(inputs)), "unmerged output is bit-identical");
        }
    }

    @Test
    void rescaleEqualsAFreshApplyBitForBit() {
        try (FluxTransformer a = FluxTransformer.load(MODEL, DType.F32); FluxTransformer b = FluxTransformer.load(MODEL, DType.F32);
             LoraAdapter lora = LoraAdapter.read(LORAS.resolve("flux_peft_r4.safetensors")); PointerScope scope = new PointerScope()) {
            lora.applyTo(a, 1.0, true);
            Tensor first = a.linears().get("proj_out").weight();
            lora.applyTo(a, 0.5, true); // rescale in place
            assertTrue(first.isNull(), "the merge at the old scale is freed");
            lora.applyTo(b, 0.5, true);
            assertEquals(0.5, lora.scaleIn(a));
            Map<String, Tensor> wa = weights(a), wb = weights(b);
            wa.forEach((k, w) -> assertTrue(equal(w, wb.get(k)), k));
            assertTrue(equal(a.forward(inputs), b.forward(inputs)));
        }
    }

    @Test
    void stackedLorasComeOffLastFirstAndRestoreTheModel() {
        try (FluxTransformer model = FluxTransformer.load(MODEL, DType.F32); LoraAdapter peft = LoraAdapter.read(LORAS.resolve("flux_peft_r4.safetensors"));
             LoraAdapter kohya = LoraAdapter.read(LORAS.resolve("flux_kohya_r4.safetensors")); PointerScope scope = new PointerScope()) {
            Tensor plain = model.forward(inputs);
            peft.applyTo(model, 1.0, true);
            Tensor one = model.forward(inputs);
            kohya.applyTo(model, 0.7, true);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> peft.removeFrom(model));
            assertTrue(e.getMessage().contains("remove that one first"), e.getMessage());
            assertThrows(IllegalStateException.class, () -> peft.applyTo(model, 0.3, true));
            assertTrue(kohya.removeFrom(model));
            assertTrue(equal(one, model.forward(inputs)), "removing the top LoRA restores the one below exactly");
            assertTrue(peft.removeFrom(model));
            assertTrue(equal(plain, model.forward(inputs)));
        }
    }

    @Test
    void closingAnAppliedAdapterKeepsItsMergeAndFreesTheOriginals() {
        try (FluxTransformer model = FluxTransformer.load(MODEL, DType.F32); PointerScope scope = new PointerScope()) {
            Tensor original = model.linears().get("proj_out").weight();
            LoraAdapter lora = LoraAdapter.read(LORAS.resolve("flux_peft_r4.safetensors"));
            lora.applyTo(model, 1.0, true);
            Tensor merged = model.forward(inputs);
            lora.close();
            assertTrue(original.isNull(), "the kept original is released with the adapter");
            assertTrue(equal(merged, model.forward(inputs)), "the merge stays in the model");
            assertThrows(IllegalStateException.class, () -> lora.removeFrom(model));
        }
    }

    @Test
    void strictModeListsForeignKeysAndNonStrictReportsThem(@TempDir Path dir) {
        Path file = dir.resolve("mixed.safetensors");
        Map<String, Tensor> t = new LinkedHashMap<>();
        try (PointerScope scope = new PointerScope()) {
            t.put("transformer.context_embedder.lora_A.weight", Tensors.fromFloats(new float[4 * 32], 4, 32));
            t.put("transformer.context_embedder.lora_B.weight", Tensors.fromFloats(new float[32 * 4], 32, 4));
            for (int i = 0; i < 12; i++) { // a UNet's layers: 24 keys that target nothing here
                t.put("lora_unet_down_blocks_" + i + "_attn_to_q.lora_down.weight", Tensors.fromFloats(new float[8], 2, 4));
                t.put("lora_unet_down_blocks_" + i + "_attn_to_q.lora_up.weight", Tensors.fromFloats(new float[8], 4, 2));
            }
            t.put("lora_unet_mid.dora_scale", Tensors.fromFloats(new float[1], 1));
            SafetensorsWriter.write(file, t);
        }
        try (FluxTransformer model = FluxTransformer.load(MODEL, DType.F32); LoraAdapter lora = LoraAdapter.read(file)) {
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> lora.applyTo(model, 1.0, true));
            assertTrue(e.getMessage().contains("25 LoRA key(s) target nothing in the FLUX transformer"), e.getMessage());
            assertTrue(e.getMessage().contains("'lora_unet_down_blocks_0_attn_to_q.lora_down.weight'"), e.getMessage());
            assertTrue(e.getMessage().contains("(first 20 of 25)"), e.getMessage());
            Tensor before = model.linears().get("context_embedder").weight();
            assertSame(before, model.linears().get("context_embedder").weight(), "a strict failure changes nothing");

            LoraReport r = lora.applyTo(model, 1.0, false);
            assertEquals(List.of("transformer.context_embedder"), r.matchedModules());
            assertEquals(List.of("context_embedder"), r.targets());
            assertEquals(25, r.unmatchedKeys().size());
            assertTrue(r.summary().contains("25 key(s) unmatched"), r.summary());
        }
    }

    @Test
    void aLoraThatMatchesNothingAlwaysFails(@TempDir Path dir) {
        Path file = dir.resolve("sd3.safetensors");
        try (FluxTransformer model = FluxTransformer.load(MODEL, DType.F32); LoraAdapter lora = LoraAdapter.read(LORAS.resolve("sd3_peft_r4.safetensors"))) {
            // SD3 names that FLUX also has (context_embedder, proj_out, ...) have other shapes: a wrong-model LoRA is an error either way
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> lora.applyTo(model, 1.0, false));
            assertTrue(e.getMessage().contains("sd3_peft_r4.safetensors"), e.getMessage());
        }
        Map<String, Tensor> t = new HashMap<>();
        try (PointerScope scope = new PointerScope()) {
            t.put("lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", Tensors.fromFloats(new float[8], 2, 4));
            t.put("lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", Tensors.fromFloats(new float[8], 4, 2));
            SafetensorsWriter.write(file, t);
        }
        try (FluxTransformer model = FluxTransformer.load(MODEL, DType.F32); LoraAdapter lora = LoraAdapter.read(file)) {
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> lora.applyTo(model, 1.0, false));
            assertTrue(e.getMessage().contains("none of its 1 LoRA module(s) targets a Linear of the FLUX transformer"), e.getMessage());
        }
    }

    @Test
    void misShapedOrIncompleteModulesAreRejectedWithTheirKeys(@TempDir Path dir) {
        Path wide = dir.resolve("wide.safetensors");
        Path half = dir.resolve("half.safetensors");
        try (PointerScope scope = new PointerScope()) {
            SafetensorsWriter.write(wide, Map.of("transformer.context_embedder.lora_A.weight", Tensors.fromFloats(new float[4 * 64], 4, 64),
                    "transformer.context_embedder.lora_B.weight", Tensors.fromFloats(new float[32 * 4], 32, 4)));
            SafetensorsWriter.write(half, Map.of("transformer.context_embedder.lora_A.weight", Tensors.fromFloats(new float[4 * 32], 4, 32)));
        }
        try (FluxTransformer model = FluxTransformer.load(MODEL, DType.F32); LoraAdapter lora = LoraAdapter.read(wide)) {
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> lora.applyTo(model, 1.0, true));
            assertTrue(e.getMessage().contains("'transformer.context_embedder.lora_A.weight' has shape [4, 64]"), e.getMessage());
            assertTrue(e.getMessage().contains("takes 32 inputs"), e.getMessage());
        }
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> LoraAdapter.read(half));
        assertTrue(e.getMessage().contains("has no up (lora_B / lora_up) matrix"), e.getMessage());
    }

    @Test
    void sd3InBf16MergesIntoBf16WeightsAndUnloadsExactly() {
        Path caseDir = GoldenData.root().resolve("lora/cases/sd3_peft_scale1");
        try (Sd3Transformer model = Sd3Transformer.load(GoldenData.root().resolve("sd3_transformer/models/sd35m/transformer"), DType.BF16);
             LoraAdapter lora = LoraAdapter.read(LORAS.resolve("sd3_peft_r4.safetensors"));
             SafetensorsFile in = SafetensorsFile.open(caseDir.resolve("inputs.safetensors")); PointerScope scope = new PointerScope()) {
            Tensor h = in.load("hidden_states"), t = in.load("encoder_hidden_states"), p = in.load("pooled_projections"), ts = in.load("timestep");
            Tensor plain = model.forward(h, t, p, ts);
            Tensor before = model.linears().get("transformer_blocks.0.attn2.to_q").weight();
            LoraReport r = lora.applyTo(model, 1.0, true);
            assertEquals(45, r.targets().size());
            Tensor merged = model.linears().get("transformer_blocks.0.attn2.to_q").weight();
            assertEquals(DType.BF16, Tensors.dtype(merged));
            assertFalse(equal(plain, model.forward(h, t, p, ts)));
            assertTrue(lora.removeFrom(model));
            assertSame(before, model.linears().get("transformer_blocks.0.attn2.to_q").weight());
            assertTrue(equal(plain, model.forward(h, t, p, ts)), "bit-identical after unloading");
        }
    }

    private static Map<String, Tensor> weights(FluxTransformer model) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : model.linears().entrySet()) out.put(e.getKey(), e.getValue().weight());
        return out;
    }
}
