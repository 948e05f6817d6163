package io.mmdit4j;

import io.mmdit4j.guidance.GuidanceTerm;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.util.ArrayList;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.equal;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What every family's transformer must do, as diffusers' {@code ModelTesterMixin} states it for its models: load, give
 * {@code w = 0} guidance bit-identical to none, guide rows independently, give batch rows what single forwards give,
 * reject bad inputs with a clear message before any native work, and run on {@code meta} with the same code. A family
 * fills in how to load its tiny model and make its inputs; the tests are the same for all.
 *
 * @param <M> the family's transformer
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class TransformerContract<M extends AutoCloseable> {
    private M model;

    /** The family's tiny model, fp32 on the CPU. */
    protected abstract M load();

    /** The same configuration on the {@code meta} device (no weights, no memory). */
    protected abstract M meta();

    /** Blocks counted with the global guidance counter. */
    protected abstract int numGuidedBlocks(M m);

    /** The width {@code D} of the conditioning vector {@code temb} (guidance deltas are {@code [1, D]}). */
    protected abstract long conditioningWidth(M m);

    /** A forward's inputs for {@code batch} rows, drawn from {@code gen} (null: uninitialised, e.g. on meta), made with {@code options}. */
    protected abstract List<Tensor> inputs(M m, int batch, GeneratorOptional gen, TensorOptions options);

    /** Row {@code i} of batched inputs, as the inputs of a batch of one. */
    protected abstract List<Tensor> row(List<Tensor> inputs, int i);

    /** One forward at step 0; the result is owned by the caller. */
    protected abstract Tensor forward(M m, List<Tensor> inputs, ModulationGuidance guidance);

    /** The output shape for {@code batch} rows. */
    protected abstract long[] outputShape(M m, int batch);

    /** Valid inputs with one of them mis-shaped, and a piece of the message that must name it. */
    protected abstract BadInput badInput(M m);

    public record BadInput(List<Tensor> inputs, String message) {}

    @BeforeAll
    void loadModel() {
        model = load();
    }

    @AfterAll
    void closeModel() throws Exception {
        if (model != null) model.close();
    }

    private static TensorOptions f32() {
        return new TensorOptions(ScalarType.Float);
    }

    private static GeneratorOptional seeded(long seed) {
        return new GeneratorOptional(createCPUGenerator(seed));
    }

    private ModulationGuidance guidance(double w, LayerSchedule layers, double[] rowWeights) {
        Tensor delta = Tensors.keep(randn(new long[] {1, conditioningWidth(model)}, seeded(99), f32()));
        return ModulationGuidance.builder().add(new GuidanceTerm("contract", delta, w, layers, StepWindow.all(), rowWeights)).build();
    }

    @Test
    void loadsAModelWithGuidedBlocks() {
        assertTrue(numGuidedBlocks(model) > 0);
    }

    @Test
    void zeroWeightGuidanceIsBitIdenticalToNone() {
        try (PointerScope scope = new PointerScope(); ModulationGuidance zero = guidance(0.0, LayerSchedule.all(), null);
             ModulationGuidance some = guidance(3.0, LayerSchedule.all(), null)) {
            List<Tensor> in = inputs(model, 2, seeded(1), f32());
            Tensor plain = forward(model, in, ModulationGuidance.none());
            assertArrayEquals(outputShape(model, 2), Tensors.shape(plain));
            assertTrue(equal(plain, forward(model, in, zero)), "w = 0 must be bit-identical to no guidance");
            assertFalse(equal(plain, forward(model, in, some)), "w = 3 must change the output (the test can fail)");
        }
    }

    @Test
    void guidanceIsPerRow() {
        try (PointerScope scope = new PointerScope(); ModulationGuidance secondOnly = guidance(3.0, LayerSchedule.all(), new double[] {0, 1})) {
            List<Tensor> in = inputs(model, 2, seeded(2), f32());
            Tensor plain = forward(model, in, ModulationGuidance.none());
            Tensor guided = forward(model, in, secondOnly);
            assertTrue(equal(plain.select(0, 0), guided.select(0, 0)), "row 0 has weight 0: bit-identical to unguided");
            assertFalse(equal(plain.select(0, 1), guided.select(0, 1)), "row 1 is guided");
        }
    }

    @Test
    void batchRowsGiveWhatSingleForwardsGive() {
        try (PointerScope scope = new PointerScope(); ModulationGuidance g = guidance(2.0, LayerSchedule.from(1), null)) {
            List<Tensor> in = inputs(model, 2, seeded(3), f32());
            Tensor batch = forward(model, in, g);
            for (int i = 0; i < 2; i++) {
                Tensor single = forward(model, row(in, i), g);
                // other GEMM blocking for one row than for two: equal up to float32 rounding
                assertTrue(single.select(0, 0).allclose(batch.select(0, i), 1e-4, 1e-5, false),
                        "row " + i + ": max |batch - single| = " + single.select(0, 0).sub(batch.select(0, i)).abs().max().item_float());
            }
        }
    }

    @Test
    void badInputsAndSchedulesGiveClearErrors() {
        try (PointerScope scope = new PointerScope();
             ModulationGuidance outside = guidance(1.0, LayerSchedule.interval(0, numGuidedBlocks(model)), null)) {
            BadInput bad = badInput(model);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> forward(model, bad.inputs(), ModulationGuidance.none()));
            assertTrue(e.getMessage().contains(bad.message()), e.getMessage());
            List<Tensor> in = inputs(model, 1, seeded(4), f32());
            e = assertThrows(IllegalArgumentException.class, () -> forward(model, in, outside));
            assertTrue(e.getMessage().contains("layer " + numGuidedBlocks(model)), e.getMessage());
            ModulationGuidance wrongWidth = ModulationGuidance.builder().term(Tensors.keep(randn(new long[] {1, conditioningWidth(model) + 1}, seeded(5), f32())),
                    1.0, LayerSchedule.all()).build();
            try {
                e = assertThrows(IllegalArgumentException.class, () -> forward(model, in, wrongWidth));
                assertTrue(e.getMessage().contains("delta has shape"), e.getMessage());
            } finally {
                wrongWidth.close();
            }
        }
    }

    @Test
    void runsOnTheMetaDeviceWithTheSameCode() throws Exception {
        try (M onMeta = meta(); PointerScope scope = new PointerScope(); Device meta = new Device("meta")) {
            TensorOptions options = new TensorOptions(ScalarType.Float).device(new DeviceOptional(meta));
            List<Tensor> in = inputs(onMeta, 2, null, options);
            Tensor delta = Tensors.keep(org.bytedeco.pytorch.global.torch.empty(new long[] {1, conditioningWidth(onMeta)}, options,
                    new org.bytedeco.pytorch.MemoryFormatOptional()));
            try (ModulationGuidance g = ModulationGuidance.builder().term(delta, 3.0, LayerSchedule.from(1)).build()) {
                Tensor out = forward(onMeta, in, g);
                assertTrue(out.is_meta(), "the output stays on meta");
                assertArrayEquals(outputShape(onMeta, 2), Tensors.shape(out));
            }
        }
    }

    /** Every tensor of {@code inputs} narrowed to row {@code i} along dim 0, except those at {@code unbatched} positions. */
    protected static List<Tensor> narrowRows(List<Tensor> inputs, int i, int... unbatched) {
        List<Tensor> out = new ArrayList<>();
        for (int k = 0; k < inputs.size(); k++) {
            final int index = k;
            Tensor t = inputs.get(k);
            boolean keep = t == null || java.util.Arrays.stream(unbatched).anyMatch(u -> u == index);
            out.add(keep ? t : t.narrow(0, i, 1));
        }
        return out;
    }

    /** A tensor of {@code shape} drawn from {@code gen}, or uninitialised when {@code gen} is null (meta). */
    protected static Tensor draw(long[] shape, GeneratorOptional gen, TensorOptions options) {
        return gen == null ? org.bytedeco.pytorch.global.torch.empty(shape, options, new org.bytedeco.pytorch.MemoryFormatOptional())
                : randn(shape, gen, options);
    }
}
