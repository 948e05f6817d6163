package io.mmdit4j.hidream;

import io.mmdit4j.GoldenData;
import io.mmdit4j.TransformerContract;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The transformer contract for HiDream (the tiny model: 2 double + 3 single blocks, MoE with 4 experts top-2), on
 * non-square latents (6×8: 12 tokens zero-padded to max_seq 24) so that the padding path is part of every check.
 */
class HiDreamTransformerContractTest extends TransformerContract<HiDreamTransformer> {
    private static final int H = 6, W = 8, T5 = 5, LLAMA = 4;

    static Path model() {
        return GoldenData.root().resolve("hidream_transformer/models/tiny/transformer");
    }

    @Override
    protected HiDreamTransformer load() {
        return HiDreamTransformer.load(model(), DType.F32);
    }

    @Override
    protected HiDreamTransformer meta() {
        return HiDreamTransformer.meta(HiDreamTransformer.inspect(model()), DType.F32);
    }

    @Override
    protected int numGuidedBlocks(HiDreamTransformer m) {
        return m.numGuidedBlocks();
    }

    @Override
    protected long conditioningWidth(HiDreamTransformer m) {
        return m.config().innerDim();
    }

    @Override
    protected List<Tensor> inputs(HiDreamTransformer m, int batch, GeneratorOptional gen, TensorOptions o) {
        HiDreamConfig c = m.config();
        return Arrays.asList(draw(new long[] {batch, c.inChannels(), H, W}, gen, o), draw(new long[] {batch}, gen, o),
                draw(new long[] {batch, T5, c.t5Channels()}, gen, o), draw(new long[] {c.llamaStatesNeeded(), batch, LLAMA, c.llamaChannels()}, gen, o),
                draw(new long[] {batch, c.textEmbDim()}, gen, o));
    }

    @Override
    protected List<Tensor> row(List<Tensor> inputs, int i) {
        List<Tensor> out = new ArrayList<>(narrowRows(inputs, i, 3));
        out.set(3, inputs.get(3).narrow(1, i, 1)); // the stacked Llama states: [N, B, L, C]
        return out;
    }

    @Override
    protected Tensor forward(HiDreamTransformer m, List<Tensor> in, ModulationGuidance g) {
        return m.forward(in.get(0), in.get(1), in.get(2), in.get(3), in.get(4), g, 0, null);
    }

    @Override
    protected long[] outputShape(HiDreamTransformer m, int batch) {
        return new long[] {batch, m.config().outChannels(), H, W};
    }

    @Override
    protected BadInput badInput(HiDreamTransformer m) {
        TensorOptions f32 = new TensorOptions(ScalarType.Float);
        List<Tensor> in = new ArrayList<>(inputs(m, 1, new GeneratorOptional(org.bytedeco.pytorch.global.torch.createCPUGenerator(0)), f32));
        in.set(3, draw(new long[] {m.config().llamaStatesNeeded() - 1, 1, LLAMA, m.config().llamaChannels()}, null, f32));
        return new BadInput(in, "Llama hidden states");
    }
}
