package io.mmdit4j.sampling;

import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Transfers;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.function.IntFunction;

import static org.bytedeco.pytorch.global.torch.full;
import static org.bytedeco.pytorch.global.torch.stack;

/**
 * A request's per-step inputs (a transformer's timestep argument for every step, say) built on the host exactly as a
 * step would build its own, stacked, and moved to the model's device once per request: a step then takes its row as
 * a view, with no host-to-device copy in the loop. Row {@code i} has the values the step-by-step construction gives,
 * so results are bit-identical.
 */
public final class StepTable implements AutoCloseable {
    private final Tensor table; // [steps, ...] on the device

    private StepTable(Tensor table) {
        this.table = table;
    }

    /** Rows {@code row(0..steps-1)} (each made in a scope of its own) stacked and placed on {@code device}. */
    public static StepTable of(int steps, IntFunction<Tensor> row, DeviceSpec device) {
        if (steps < 1) throw new IllegalArgumentException("steps must be >= 1, got " + steps);
        try (PointerScope scope = new PointerScope()) {
            TensorVector rows = new TensorVector();
            for (int i = 0; i < steps; i++) rows.push_back(row.apply(i));
            return new StepTable(Transfers.toOwned(stack(rows, 0), device));
        }
    }

    /**
     * Every step's timestep, {@code schedule.timestep(i)} repeated {@code rows} times in fp32 ({@code [rows]} a step), on
     * {@code device}: the timestep argument of the transformers that take the scheduler's timesteps as they are.
     */
    public static StepTable timesteps(Schedule schedule, long rows, DeviceSpec device) {
        return of(schedule.steps(), i -> full(new long[] {rows}, new Scalar((double) schedule.timestep(i)), new TensorOptions(ScalarType.Float)), device);
    }

    /**
     * A step-noise source for a stochastic sampler on a device: every step's noise drawn now, in step order, from
     * {@code draw} (the seeded CPU generators, so the values are the CPU run's), and moved to {@code device} once; step
     * {@code i} then hands out its row (owned by the taker) with no copy. The table belongs to the returned source.
     */
    public static Source predrawn(int steps, IntFunction<Tensor> draw, DeviceSpec device) {
        return new Source(of(steps, i -> io.mmdit4j.runtime.Scopes.adopt(draw.apply(i)), device));
    }

    /** Step {@code i}'s row of a {@link #predrawn} table, owned by the caller; closing the source frees the table. */
    public static final class Source implements IntFunction<Tensor>, AutoCloseable {
        private final StepTable table;

        private Source(StepTable table) {
            this.table = table;
        }

        @Override
        public Tensor apply(int i) {
            try (PointerScope scope = new PointerScope()) {
                return io.mmdit4j.runtime.Tensors.keep(table.at(i));
            }
        }

        @Override
        public void close() {
            table.close();
        }
    }

    public int steps() {
        return (int) table.size(0);
    }

    /** Step {@code i}'s row, a view in the caller's scope. */
    public Tensor at(int i) {
        return table.select(0, i);
    }

    @Override
    public void close() {
        Native.release(table);
    }
}
