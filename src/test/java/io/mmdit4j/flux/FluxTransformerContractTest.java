package io.mmdit4j.flux;

import io.mmdit4j.GoldenData;
import io.mmdit4j.TransformerContract;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.Arrays;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.zeros;

/** The transformer contract for FLUX (the tiny dev model: guidance embedder, double and single blocks). */
class FluxTransformerContractTest extends TransformerContract<FluxTransformer> {
    private static final int ROWS = 4, COLS = 6, TEXT = 8;

    @Override
    protected FluxTransformer load() {
        return FluxTransformer.load(GoldenData.fluxModel("dev"), DType.F32);
    }

    @Override
    protected FluxTransformer meta() {
        return FluxTransformer.meta(FluxTransformer.inspect(GoldenData.fluxModel("dev"), null), DType.F32);
    }

    @Override
    protected int numGuidedBlocks(FluxTransformer m) {
        return m.config().totalBlocks();
    }

    @Override
    protected long conditioningWidth(FluxTransformer m) {
        return m.config().innerDim();
    }

    @Override
    protected List<Tensor> inputs(FluxTransformer m, int batch, GeneratorOptional gen, TensorOptions o) {
        FluxConfig c = m.config();
        return Arrays.asList(draw(new long[] {batch, ROWS * COLS, c.inChannels()}, gen, o), draw(new long[] {batch, TEXT, c.jointAttentionDim()}, gen, o),
                draw(new long[] {batch, c.pooledProjectionDim()}, gen, o), draw(new long[] {batch}, gen, o),
                c.guidanceEmbeds() ? draw(new long[] {batch}, gen, o) : null,
                FluxInputs.imageIds(ROWS, COLS), zeros(new long[] {TEXT, 3}, new TensorOptions(ScalarType.Float))); // ids: CPU, per token
    }

    @Override
    protected List<Tensor> row(List<Tensor> inputs, int i) {
        return narrowRows(inputs, i, 5, 6);
    }

    @Override
    protected Tensor forward(FluxTransformer m, List<Tensor> in, ModulationGuidance g) {
        return m.forward(new FluxInputs(in.get(0), in.get(1), in.get(2), in.get(3), in.get(4), in.get(5), in.get(6)), g, 0);
    }

    @Override
    protected long[] outputShape(FluxTransformer m, int batch) {
        return new long[] {batch, ROWS * COLS, m.config().outChannels()};
    }

    @Override
    protected BadInput badInput(FluxTransformer m) {
        List<Tensor> in = inputs(m, 1, new GeneratorOptional(org.bytedeco.pytorch.global.torch.createCPUGenerator(0)), new TensorOptions(ScalarType.Float));
        in.set(0, draw(new long[] {1, ROWS * COLS, m.config().inChannels() + 1}, null, new TensorOptions(ScalarType.Float)));
        return new BadInput(in, "hidden_states");
    }
}
