package io.mmdit4j.runtime;

import io.mmdit4j.nn.Attention;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.bytedeco.pytorch.global.torch.globalContext;
import static org.bytedeco.pytorch.global.torch.ones;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * libtorch keeps the SDPA switches in one process-wide context that the CPU and the CUDA kernel choice both read: the
 * CPU's "flash off" for bf16 must not be what a CUDA attention sees. No GPU here, so the CUDA side is checked through
 * the settings {@link Torch} applies for it (cuDNN first, flash on again), around real CPU attentions.
 */
class AttentionBackendsTest {
    @AfterEach
    void cpuDefaults() {
        Torch.selectAttentionBackend(DType.F32);
    }

    @Test
    void cpuBf16TurnsFlashOffAndCudaTurnsItBackOnWithCudnnFirst() {
        Torch.init();
        try (PointerScope scope = new PointerScope()) {
            Tensor q = ones(new long[] {1, 2, 4, 8}, new TensorOptions(ScalarType.BFloat16));
            Attention.sdpa(q, q, q);
            assertFalse(globalContext().userEnabledFlashSDP(), "CPU bf16 runs the math kernel");
            assertEquals("cpu-math", Torch.attentionBackend());
            Torch.apply(Torch.Backends.CUDA); // what a CUDA attention applies before it runs
            assertTrue(globalContext().userEnabledFlashSDP(), "FlashAttention is on again for CUDA");
            assertTrue(globalContext().userEnabledCuDNNSDP());
            assertEquals(org.bytedeco.pytorch.global.torch.SDPBackend.cudnn_attention.value, globalContext().sDPPriorityOrder().get(0),
                    "cuDNN attention first");
            Tensor f = ones(new long[] {1, 2, 4, 8}, new TensorOptions(ScalarType.Float));
            Attention.sdpa(f, f, f);
            assertTrue(globalContext().userEnabledFlashSDP(), "CPU fp32 keeps the flash kernel");
            Attention.sdpa(q, q, q);
            assertFalse(globalContext().userEnabledFlashSDP(), "and bf16 switches back, per call");
        }
    }

    @Test
    void tf32IsASwitch() {
        boolean before = Torch.tf32();
        try {
            Torch.setTf32(true);
            assertTrue(Torch.tf32());
            assertTrue(globalContext().allowTF32CuDNN());
            Torch.setTf32(false);
            assertFalse(Torch.tf32());
        } finally {
            Torch.setTf32(before);
        }
    }
}
