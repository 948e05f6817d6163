package io.mmdit4j.bench;

import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.silu;

/**
 * The parts of a FLUX forward on the real-width work unit (D 3072, 24x128 heads, 256 image + 128 text tokens):
 * one double block, one single block, and the adaLN modulation path alone — time embedding, the guidance plan's
 * per-block vectors, and every block's modulation linear — plain vs guided. The adaLN pair is where modulation
 * guidance does its work; its difference, next to a block's time, is the cost of guidance.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@State(org.openjdk.jmh.annotations.Scope.Benchmark)
@Fork(value = 1, jvmArgsAppend = {"-Dorg.bytedeco.javacpp.maxPhysicalBytes=0", "--add-modules=jdk.incubator.vector"})
@Warmup(iterations = 2, time = 5)
@Measurement(iterations = 5, time = 5)
public class FluxBlockBenchmarks {
    @Param({"tiny", "unit"})
    public String size;

    @Param({"fp32", "bf16"})
    public String dtype;

    private FluxTransformer model;
    private PointerScope scope;
    private FluxInputs inputs;
    private Rope rope;
    private ModulationGuidance guidance;
    private Tensor x, ctx, joined, cond;
    private int blocks;

    @Setup(Level.Trial)
    public void setUp() {
        FluxConfig c = Sizes.config(size);
        DType d = DType.parse(dtype);
        model = FluxTransformer.random(c, 0, d);
        blocks = c.totalBlocks();
        scope = new PointerScope();
        inputs = Sizes.inputs(size, c);
        rope = model.rope(inputs.txtIds(), inputs.imgIds());
        guidance = Sizes.guidance(model, c);
        long n = inputs.hiddenStates().size(1), t = inputs.encoderHiddenStates().size(1), dim = c.innerDim();
        try (InferenceMode guard = new InferenceMode()) {
            x = org.bytedeco.pytorch.global.torch.randn(new long[] {1, n, dim}, new org.bytedeco.pytorch.TensorOptions(d.scalarType()));
            ctx = org.bytedeco.pytorch.global.torch.randn(new long[] {1, t, dim}, new org.bytedeco.pytorch.TensorOptions(d.scalarType()));
            joined = cat(new TensorVector(ctx, x), 1);
            cond = silu(model.timeTextEmbed(inputs.timestep(), inputs.guidance(), inputs.pooledProjections()));
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        guidance.close();
        rope.close();
        scope.close();
        model.close();
    }

    @Benchmark
    public void doubleBlock() {
        for (Tensor out : model.doubleBlock(0, x, ctx, cond, rope)) out.close();
    }

    @Benchmark
    public void singleBlock() {
        model.singleBlock(0, joined, cond, rope).close();
    }

    @Benchmark
    public void adalnPlain() {
        adaln(ModulationGuidance.none());
    }

    @Benchmark
    public void adalnGuided() {
        adaln(guidance);
    }

    /** temb, the plan's per-block vectors and every block's modulation linear, as one forward computes them. */
    private void adaln(ModulationGuidance g) {
        try (InferenceMode guard = new InferenceMode(); PointerScope s = new PointerScope()) {
            Tensor temb = model.timeTextEmbed(inputs.timestep(), inputs.guidance(), inputs.pooledProjections());
            BlockConditioning c = g.resolve(temb, 0, blocks);
            model.modulations(c, (block, stream, name, vector) -> { });
        }
    }
}
