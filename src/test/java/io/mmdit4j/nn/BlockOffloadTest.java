package io.mmdit4j.nn;

import io.mmdit4j.GoldenData;
import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.hunyuan.HunyuanVideoConfig;
import io.mmdit4j.hunyuan.HunyuanVideoTransformer;
import io.mmdit4j.sd3.Sd3Config;
import io.mmdit4j.sd3.Sd3Transformer;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.quant.CheckpointQuantizer;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.zeros;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Block offload: its schedule on the meta device for the real FLUX.1-dev (Q8_0 and plain): every block's weights copied
 * one block ahead, run, dropped, never more than two blocks on the device, the first block prefetched again for the next
 * step; and a no-op on the CPU (the same bits as without it).
 */
class BlockOffloadTest {
    @BeforeAll
    static void init() {
        Torch.init();
    }

    private static FluxInputs metaInputs(FluxConfig c, int imageTokens, int textTokens, TensorOptions onMeta) {
        return new FluxInputs(empty(new long[] {1, imageTokens, c.inChannels()}, onMeta, new MemoryFormatOptional()),
                empty(new long[] {1, textTokens, c.jointAttentionDim()}, onMeta, new MemoryFormatOptional()),
                empty(new long[] {1, c.pooledProjectionDim()}, onMeta, new MemoryFormatOptional()),
                empty(new long[] {1}, onMeta, new MemoryFormatOptional()),
                c.guidanceEmbeds() ? empty(new long[] {1}, onMeta, new MemoryFormatOptional()) : null,
                FluxInputs.imageIds(4, 4), zeros(new long[] {textTokens, 3}, new TensorOptions(ScalarType.Float)));
    }

    /** The expected events of one forward over {@code n} blocks, the first already copied when {@code prefetched}. */
    private static List<String> schedule(int n, boolean prefetched) {
        List<String> e = new ArrayList<>();
        if (!prefetched) e.add("copy 0");
        for (int i = 0; i < n; i++) {
            e.add("run " + i);
            if (i + 1 < n) e.add("copy " + (i + 1));
            e.add("drop " + i);
        }
        e.add("copy 0");
        return e;
    }

    @Test
    void realSizeScheduleOnMeta() {
        FluxConfig c = FluxConfig.dev();
        for (CheckpointQuantizer.Target quant : new CheckpointQuantizer.Target[] {CheckpointQuantizer.Target.Q8_0, null}) {
            try (FluxTransformer m = FluxTransformer.meta(c, DType.BF16, quant, true); PointerScope scope = new PointerScope();
                 Device meta = new Device("meta")) {
                BlockOffload o = m.offload();
                assertTrue(o.active());
                assertEquals(c.totalBlocks(), o.blocks());
                FluxInputs in = metaInputs(c, 16, 8, new TensorOptions(ScalarType.BFloat16).device(new DeviceOptional(meta)));
                Tensor first = m.forward(in);
                assertTrue(first.is_meta());
                List<String> expected = schedule(c.totalBlocks(), false);
                assertEquals(expected, o.events(), "first step");
                m.forward(in);
                expected.addAll(schedule(c.totalBlocks(), true));
                assertEquals(expected, o.events(), "the second step starts with the prefetched first block");
                assertEquals(2, o.maxResident(), "the running block and the prefetched next");
                long staged = m.linears().values().stream().filter(Linear::isStaged).count();
                assertEquals(2 * 7, m.linears().entrySet().stream().filter(e -> e.getKey().startsWith("transformer_blocks.0.")).count(),
                        "block 0's Linears (img and txt: q, k, v, out, mlp in/out, modulation)");
                assertEquals(m.linears().entrySet().stream().filter(e -> e.getKey().startsWith("transformer_blocks.0.")).count(), staged,
                        "between steps only the prefetched first block is on the device");
            }
        }
    }

    @Test
    void onTheCpuOffloadIsANoOp() {
        java.nio.file.Path model = GoldenData.fluxModel("dev").resolve("transformer");
        try (FluxTransformer plain = FluxTransformer.load(model, DType.F32, null, DeviceSpec.CPU, false);
             FluxTransformer offloaded = FluxTransformer.load(model, DType.F32, null, DeviceSpec.CPU, true);
             SafetensorsFile in = SafetensorsFile.open(GoldenData.fluxCase("dev_plain").resolve("inputs.safetensors"));
             PointerScope scope = new PointerScope()) {
            assertFalse(offloaded.offload().active());
            FluxInputs x = new FluxInputs(in.load("hidden_states"), in.load("encoder_hidden_states"), in.load("pooled_projections"),
                    in.load("timestep"), in.load("guidance"), in.load("img_ids"), in.load("txt_ids"));
            assertTrue(plain.forward(x).equal(offloaded.forward(x)));
        }
    }

    @Test
    void hunyuanVideoRealSizeScheduleOnMeta() {
        HunyuanVideoConfig c = HunyuanVideoConfig.hunyuanVideo();
        try (HunyuanVideoTransformer m = HunyuanVideoTransformer.meta(c, DType.BF16, true); PointerScope scope = new PointerScope();
             Device meta = new Device("meta")) {
            BlockOffload o = m.offload();
            assertTrue(o.active());
            assertEquals(c.totalBlocks(), o.blocks());
            TensorOptions onMeta = new TensorOptions(ScalarType.BFloat16).device(new DeviceOptional(meta));
            Tensor hidden = empty(new long[] {1, c.inChannels(), 1, 4, 4}, onMeta, new MemoryFormatOptional());
            Tensor t = empty(new long[] {1}, onMeta, new MemoryFormatOptional());
            Tensor text = empty(new long[] {1, 8, c.textEmbedDim()}, onMeta, new MemoryFormatOptional());
            Tensor mask = empty(new long[] {1, 8}, onMeta, new MemoryFormatOptional());
            Tensor pooled = empty(new long[] {1, c.pooledProjectionDim()}, onMeta, new MemoryFormatOptional());
            Tensor guidance = c.guidanceEmbeds() ? empty(new long[] {1}, onMeta, new MemoryFormatOptional()) : null;
            assertTrue(m.forward(hidden, t, text, mask, pooled, guidance, ModulationGuidance.none(), 0).is_meta());
            List<String> expected = schedule(c.totalBlocks(), false);
            assertEquals(expected, o.events(), "first step");
            m.forward(hidden, t, text, mask, pooled, guidance, ModulationGuidance.none(), 1);
            expected.addAll(schedule(c.totalBlocks(), true));
            assertEquals(expected, o.events(), "the second step starts with the prefetched first block");
            assertEquals(2, o.maxResident());
        }
    }

    @Test
    void hunyuanVideoOnTheCpuOffloadIsANoOp() {
        java.nio.file.Path model = GoldenData.root().resolve("hunyuan_video_transformer/models/tiny/transformer");
        try (HunyuanVideoTransformer plain = HunyuanVideoTransformer.load(model, DType.F32, DeviceSpec.CPU, null, false);
             HunyuanVideoTransformer offloaded = HunyuanVideoTransformer.load(model, DType.F32, DeviceSpec.CPU, null, true);
             SafetensorsFile in = SafetensorsFile.open(GoldenData.root().resolve("hunyuan_video_transformer/cases/tiny_modg_w3_s1/inputs.safetensors"));
             PointerScope scope = new PointerScope()) {
            assertFalse(offloaded.offload().active());
            Tensor g = plain.config().guidanceEmbeds() ? in.load("guidance") : null;
            Tensor a = plain.forward(in.load("hidden_states"), in.load("timestep"), in.load("encoder_hidden_states"), in.load("encoder_attention_mask"),
                    in.load("pooled_projections"), g, ModulationGuidance.none(), 0);
            Tensor b = offloaded.forward(in.load("hidden_states"), in.load("timestep"), in.load("encoder_hidden_states"), in.load("encoder_attention_mask"),
                    in.load("pooled_projections"), g, ModulationGuidance.none(), 0);
            assertTrue(a.equal(b));
        }
    }

    @Test
    void sd35LargeRealSizeScheduleOnMeta() {
        Sd3Config c = Sd3Config.sd35Large();
        try (Sd3Transformer m = Sd3Transformer.meta(c, DType.BF16, true); PointerScope scope = new PointerScope();
             Device meta = new Device("meta")) {
            BlockOffload o = m.offload();
            assertTrue(o.active());
            assertEquals(c.numLayers(), o.blocks());
            TensorOptions onMeta = new TensorOptions(ScalarType.BFloat16).device(new DeviceOptional(meta));
            Tensor hidden = empty(new long[] {1, c.inChannels(), 4, 4}, onMeta, new MemoryFormatOptional());
            Tensor text = empty(new long[] {1, 8, c.jointAttentionDim()}, onMeta, new MemoryFormatOptional());
            Tensor pooled = empty(new long[] {1, c.pooledProjectionDim()}, onMeta, new MemoryFormatOptional());
            Tensor t = empty(new long[] {1}, onMeta, new MemoryFormatOptional());
            assertTrue(m.forward(hidden, text, pooled, t).is_meta());
            List<String> expected = schedule(c.numLayers(), false);
            assertEquals(expected, o.events(), "first step");
            m.forward(hidden, text, pooled, t);
            expected.addAll(schedule(c.numLayers(), true));
            assertEquals(expected, o.events(), "the second step starts with the prefetched first block");
            assertEquals(2, o.maxResident());
        }
    }

    @Test
    void sd3OnTheCpuOffloadIsANoOp() {
        java.nio.file.Path model = GoldenData.root().resolve("sd3_transformer/models/sd35m/transformer");
        try (Sd3Transformer plain = Sd3Transformer.load(model, DType.F32, DeviceSpec.CPU, false);
             Sd3Transformer offloaded = Sd3Transformer.load(model, DType.F32, DeviceSpec.CPU, true); PointerScope scope = new PointerScope()) {
            assertFalse(offloaded.offload().active());
            Sd3Config c = plain.config();
            Tensor hidden = org.bytedeco.pytorch.global.torch.randn(new long[] {1, c.inChannels(), 8, 8});
            Tensor text = org.bytedeco.pytorch.global.torch.randn(new long[] {1, 6, c.jointAttentionDim()});
            Tensor pooled = org.bytedeco.pytorch.global.torch.randn(new long[] {1, c.pooledProjectionDim()});
            Tensor t = org.bytedeco.pytorch.global.torch.full(new long[] {1}, new org.bytedeco.pytorch.Scalar(500.0));
            assertTrue(plain.forward(hidden, text, pooled, t).equal(offloaded.forward(hidden, text, pooled, t)));
        }
    }
}
