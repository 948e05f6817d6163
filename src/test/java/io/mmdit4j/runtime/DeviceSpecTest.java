package io.mmdit4j.runtime;

import io.mmdit4j.GoldenData;
import io.mmdit4j.flux.FluxTransformer;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Device selection; the CUDA path itself needs a GPU host and is not exercised here. */
class DeviceSpecTest {

    @Test
    void parsesDeviceNames() {
        assertEquals(DeviceSpec.CPU, DeviceSpec.parse("cpu"));
        assertEquals(DeviceSpec.META, DeviceSpec.parse("meta"));
        assertEquals(DeviceSpec.cuda(0), DeviceSpec.parse("cuda"));
        assertEquals(DeviceSpec.cuda(1), DeviceSpec.parse("CUDA:1"));
        assertEquals("cuda:1", DeviceSpec.parse("cuda:1").toString());
        for (String bad : new String[] {"", "gpu:x", "cuda:", "cuda:-1", "tpu"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeviceSpec.parse(bad));
            assertTrue(e.getMessage().contains("cuda") || e.getMessage().contains(">= 0"), e.getMessage());
        }
    }

    @Test
    void cudaRequestOnAHostWithoutCudaFailsBeforeLoadingAnything() {
        Torch.init();
        Assumptions.assumeFalse(torch.cuda_is_available(), "this host has CUDA");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> FluxTransformer.load(GoldenData.fluxModel("schnell").resolve("transformer"), DType.F32, null, DeviceSpec.parse("cuda")));
        assertTrue(e.getMessage().contains("cuda:0") && e.getMessage().contains("not available"), e.getMessage());
    }

    @Test
    void cpuTensorsReportTheCpuDevice() {
        try (var t = Tensors.fromFloats(new float[] {1, 2}, 2)) {
            assertEquals(DeviceSpec.CPU, DeviceSpec.of(t));
            assertTrue(DeviceSpec.of(t).isCpu());
        }
    }
}
