package io.mmdit4j.train;

import org.bytedeco.pytorch.global.torch;

/**
 * libtorch's CPU autocast for a scope (this thread): with {@code bf16}, matrix products and convolutions run in bf16
 * while the fp32 parameters, the normalisations the modules compute in fp32 and the loss stay fp32 (PyTorch's
 * {@code torch.autocast("cpu", dtype=torch.bfloat16)}). Restores the previous state on close; off does nothing.
 */
final class Autocast implements AutoCloseable {
    private final boolean on, wasEnabled, wasCache;
    private final torch.ScalarType wasDtype;

    Autocast(boolean bf16) {
        this.on = bf16;
        this.wasEnabled = bf16 && torch.is_autocast_enabled(torch.DeviceType.CPU);
        this.wasDtype = bf16 ? torch.get_autocast_dtype(torch.DeviceType.CPU) : null;
        this.wasCache = bf16 && torch.is_autocast_cache_enabled();
        if (bf16) {
            torch.set_autocast_cache_enabled(false); // no cached bf16 copies of weights that the optimizer then changes
            torch.set_autocast_dtype(torch.DeviceType.CPU, torch.ScalarType.BFloat16);
            torch.set_autocast_enabled(torch.DeviceType.CPU, true);
        }
    }

    @Override
    public void close() {
        if (!on) return;
        torch.set_autocast_enabled(torch.DeviceType.CPU, wasEnabled);
        torch.set_autocast_dtype(torch.DeviceType.CPU, wasDtype);
        torch.set_autocast_cache_enabled(wasCache);
    }
}
