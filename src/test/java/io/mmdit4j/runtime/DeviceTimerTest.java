package io.mmdit4j.runtime;

import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipelines;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link DeviceTimer} off CUDA (the host's clock: CPU ops are synchronous, meta ops do no work) and the GEMM floor on the
 * device of a model ({@link GemmFloor#split(OpCounter.Recording, int, DeviceSpec)}: on meta its inputs are made there
 * and nothing is computed). The CUDA-event timer has never run (no GPU here).
 */
class DeviceTimerTest {
    @Test
    void offCudaTheTimerIsTheHostsClock() throws InterruptedException {
        assertSame(DeviceTimer.WALL, DeviceTimer.of(DeviceSpec.CPU));
        assertSame(DeviceTimer.WALL, DeviceTimer.of(DeviceSpec.META));
        assertSame(DeviceTimer.WALL, DeviceTimer.of(null));
        assertEquals("wall", DeviceTimer.WALL.clock());
        long ns = DeviceTimer.WALL.time(() -> {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
        assertTrue(ns >= 20_000_000L && ns < 2_000_000_000L, ns + " ns");
    }

    @Test
    void theGemmFloorRunsOnTheModelsDevice() {
        Path folder = Pipelines.prepare("flux-tiny-demo", LoadOptions.defaults()).path().resolve("transformer");
        for (DeviceSpec d : new DeviceSpec[] {DeviceSpec.CPU, DeviceSpec.META}) {
            try (FluxTransformer flux = FluxTransformer.load(folder, DType.F32, null, d); PointerScope scope = new PointerScope()) {
                FluxInputs in = FluxInputs.random(flux.config(), 1, 8, 8, 8, 0, 1.0, 3.5);
                FluxInputs placed = new FluxInputs(Transfers.to(in.hiddenStates(), d), Transfers.to(in.encoderHiddenStates(), d),
                        Transfers.to(in.pooledProjections(), d), Transfers.to(in.timestep(), d),
                        in.guidance() == null ? null : Transfers.to(in.guidance(), d), in.imgIds(), in.txtIds());
                OpCounter.Recording ops;
                try (OpCounter.Recording r = OpCounter.record()) {
                    flux.forward(placed).close();
                    ops = r;
                }
                GemmFloor.Split floor = GemmFloor.split(ops, 2, d);
                assertTrue(Double.isFinite(floor.seconds()) && floor.seconds() >= 0, d + ": " + floor);
                assertTrue(floor.linearSeconds() < 1, d + ": the tiny model's GEMMs take well under a second: " + floor);
                if (d.isCpu()) assertTrue(floor.linearSeconds() > 0, "CPU GEMMs take time");
            }
        }
    }
}
