package io.mmdit4j.cosmos;

import io.mmdit4j.GoldenData;
import io.mmdit4j.TransformerContract;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/** The transformer contract for COSMOS (the tiny Predict2 model with its pooled-CLIP adapter). */
class CosmosTransformerContractTest extends TransformerContract<CosmosTransformer> {
    private static final int F = 1, H = 4, W = 6, TEXT = 7;

    private static Path models() {
        return GoldenData.root().resolve("cosmos_transformer/models/tiny");
    }

    @Override
    protected CosmosTransformer load() {
        return CosmosTransformer.load(models().resolve("transformer"), models().resolve("pooled_adapter.safetensors"), DType.F32, DeviceSpec.CPU);
    }

    @Override
    protected CosmosTransformer meta() {
        return CosmosTransformer.meta(CosmosTransformer.inspect(models().resolve("transformer")), 32, DType.F32);
    }

    @Override
    protected int numGuidedBlocks(CosmosTransformer m) {
        return m.numGuidedBlocks();
    }

    @Override
    protected long conditioningWidth(CosmosTransformer m) {
        return m.config().conditioningDim();
    }

    @Override
    protected List<Tensor> inputs(CosmosTransformer m, int batch, GeneratorOptional gen, TensorOptions o) {
        CosmosConfig c = m.config();
        return Arrays.asList(draw(new long[] {batch, c.inChannels(), F, H, W}, gen, o), draw(new long[] {batch}, gen, o),
                draw(new long[] {batch, TEXT, c.textEmbedDim()}, gen, o), draw(new long[] {batch, m.pooledDim()}, gen, o));
    }

    @Override
    protected List<Tensor> row(List<Tensor> inputs, int i) {
        return narrowRows(inputs, i);
    }

    @Override
    protected Tensor forward(CosmosTransformer m, List<Tensor> in, ModulationGuidance g) {
        return m.forward(in.get(0), in.get(1), in.get(2), in.get(3), g, 0);
    }

    @Override
    protected long[] outputShape(CosmosTransformer m, int batch) {
        return new long[] {batch, m.config().outChannels(), F, H, W};
    }

    @Override
    protected BadInput badInput(CosmosTransformer m) {
        TensorOptions f32 = new TensorOptions(ScalarType.Float);
        List<Tensor> in = inputs(m, 1, new GeneratorOptional(org.bytedeco.pytorch.global.torch.createCPUGenerator(0)), f32);
        in.set(2, draw(new long[] {1, TEXT, m.config().textEmbedDim() + 1}, null, f32));
        return new BadInput(in, "text (T5) states");
    }
}
