package io.mmdit4j.hunyuan;

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

import static org.bytedeco.pytorch.global.torch.ones;

/** The transformer contract for HunyuanVideo (the tiny model: token refiner, dual- and single-stream blocks, 3-D RoPE). */
class HunyuanVideoTransformerContractTest extends TransformerContract<HunyuanVideoTransformer> {
    private static final int F = 2, H = 4, W = 4, TEXT = 6;

    private static Path model() {
        return GoldenData.root().resolve("hunyuan_video_transformer/models/tiny/transformer");
    }

    @Override
    protected HunyuanVideoTransformer load() {
        return HunyuanVideoTransformer.load(model(), DType.F32);
    }

    @Override
    protected HunyuanVideoTransformer meta() {
        return HunyuanVideoTransformer.meta(HunyuanVideoTransformer.inspect(model()), DType.F32);
    }

    @Override
    protected int numGuidedBlocks(HunyuanVideoTransformer m) {
        return m.numGuidedBlocks();
    }

    @Override
    protected long conditioningWidth(HunyuanVideoTransformer m) {
        return m.config().innerDim();
    }

    @Override
    protected List<Tensor> inputs(HunyuanVideoTransformer m, int batch, GeneratorOptional gen, TensorOptions o) {
        HunyuanVideoConfig c = m.config();
        Tensor mask = gen == null ? draw(new long[] {batch, TEXT}, null, o) : ones(new long[] {batch, TEXT}, o); // every token attends
        return Arrays.asList(draw(new long[] {batch, c.inChannels(), F, H, W}, gen, o), draw(new long[] {batch}, gen, o),
                draw(new long[] {batch, TEXT, c.textEmbedDim()}, gen, o), mask, draw(new long[] {batch, c.pooledProjectionDim()}, gen, o),
                c.guidanceEmbeds() ? draw(new long[] {batch}, gen, o) : null);
    }

    @Override
    protected List<Tensor> row(List<Tensor> inputs, int i) {
        return narrowRows(inputs, i);
    }

    @Override
    protected Tensor forward(HunyuanVideoTransformer m, List<Tensor> in, ModulationGuidance g) {
        return m.forward(in.get(0), in.get(1), in.get(2), in.get(3), in.get(4), in.get(5), g, 0);
    }

    @Override
    protected long[] outputShape(HunyuanVideoTransformer m, int batch) {
        return new long[] {batch, m.config().outChannels(), F, H, W};
    }

    @Override
    protected BadInput badInput(HunyuanVideoTransformer m) {
        TensorOptions f32 = new TensorOptions(ScalarType.Float);
        List<Tensor> in = inputs(m, 1, new GeneratorOptional(org.bytedeco.pytorch.global.torch.createCPUGenerator(0)), f32);
        in.set(0, draw(new long[] {1, m.config().inChannels() + 1, F, H, W}, null, f32));
        return new BadInput(in, "hidden");
    }
}
