package io.mmdit4j.sd3;

import io.mmdit4j.GoldenData;
import io.mmdit4j.TransformerContract;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/** The transformer contract for SD3 (the tiny SD3.5 Medium model: dual-attention blocks, context_pre_only last block). */
class Sd3TransformerContractTest extends TransformerContract<Sd3Transformer> {
    private static final int H = 8, W = 8, TEXT = 8;

    private static Path model() {
        return GoldenData.root().resolve("sd3_transformer/models/sd35m/transformer");
    }

    @Override
    protected Sd3Transformer load() {
        return Sd3Transformer.load(model(), DType.F32);
    }

    @Override
    protected Sd3Transformer meta() {
        return Sd3Transformer.meta(Sd3Transformer.inspect(model()), DType.F32);
    }

    @Override
    protected int numGuidedBlocks(Sd3Transformer m) {
        return m.numGuidedBlocks();
    }

    @Override
    protected long conditioningWidth(Sd3Transformer m) {
        return m.config().innerDim();
    }

    @Override
    protected List<Tensor> inputs(Sd3Transformer m, int batch, GeneratorOptional gen, TensorOptions o) {
        Sd3Config c = m.config();
        return Arrays.asList(draw(new long[] {batch, c.inChannels(), H, W}, gen, o), draw(new long[] {batch, TEXT, c.jointAttentionDim()}, gen, o),
                draw(new long[] {batch, c.pooledProjectionDim()}, gen, o), draw(new long[] {batch}, gen, o));
    }

    @Override
    protected List<Tensor> row(List<Tensor> inputs, int i) {
        return narrowRows(inputs, i);
    }

    @Override
    protected Tensor forward(Sd3Transformer m, List<Tensor> in, ModulationGuidance g) {
        return m.forward(in.get(0), in.get(1), in.get(2), in.get(3), g, 0);
    }

    @Override
    protected long[] outputShape(Sd3Transformer m, int batch) {
        return new long[] {batch, m.config().outChannels(), H, W};
    }

    @Override
    protected BadInput badInput(Sd3Transformer m) {
        TensorOptions f32 = new TensorOptions(ScalarType.Float);
        List<Tensor> in = inputs(m, 1, new GeneratorOptional(org.bytedeco.pytorch.global.torch.createCPUGenerator(0)), f32);
        in.set(0, draw(new long[] {1, m.config().inChannels() + 1, H, W}, null, f32));
        return new BadInput(in, "hidden_states has shape");
    }
}
