package io.mmdit4j.bench;

import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.sampling.FlowMatchEulerScheduler;
import io.mmdit4j.sampling.FlowMatchSchedulerConfig;
import io.mmdit4j.sampling.Schedule;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
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

/**
 * Guided vs unguided FLUX forwards and a sampler step, on the demo-sized model and on a random real-width
 * model (D 3072, 1 double + 1 single block, 256 image + 128 text tokens). Compare the pairs within one run.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@State(org.openjdk.jmh.annotations.Scope.Benchmark)
@Fork(value = 1, jvmArgsAppend = {"-Dorg.bytedeco.javacpp.maxPhysicalBytes=0", "--add-modules=jdk.incubator.vector"})
@Warmup(iterations = 2, time = 5)
@Measurement(iterations = 5, time = 5)
public class FluxBenchmarks {
    @Param({"tiny", "unit"})
    public String size;

    @Param({"fp32", "bf16"})
    public String dtype;

    private FluxTransformer model;
    private PointerScope scope;
    private FluxInputs inputs;
    private Rope rope;
    private ModulationGuidance guidance;
    private Schedule schedule;
    private Tensor latents;
    private Tensor velocity;

    @Setup(Level.Trial)
    public void setUp() {
        FluxConfig c = Sizes.config(size);
        model = FluxTransformer.random(c, 0, DType.parse(dtype));
        scope = new PointerScope();
        inputs = Sizes.inputs(size, c);
        rope = model.rope(inputs.txtIds(), inputs.imgIds());
        guidance = Sizes.guidance(model, c);
        schedule = new FlowMatchEulerScheduler(FlowMatchSchedulerConfig.fluxSchnell(), io.mmdit4j.flux.FluxFamily.SIGMA_SPACING).schedule(4, null);
        latents = inputs.hiddenStates();
        velocity = inputs.hiddenStates().mul(new org.bytedeco.pytorch.Scalar(0.5));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        guidance.close();
        rope.close();
        scope.close();
        model.close();
    }

    @Benchmark
    public void forwardPlain() {
        model.forward(inputs, ModulationGuidance.none(), 0, rope, null).close();
    }

    @Benchmark
    public void forwardGuided() {
        model.forward(inputs, guidance, 0, rope, null).close();
    }

    @Benchmark
    public void samplerStep() {
        schedule.step(velocity, 1, latents).close();
    }
}
