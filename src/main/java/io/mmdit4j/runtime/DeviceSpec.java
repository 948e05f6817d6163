package io.mmdit4j.runtime;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;

import java.util.Locale;

/**
 * Where a model runs: {@code cpu} or {@code cuda[:N]}. CUDA needs the {@code linux-x86_64-gpu} natives and a
 * host with the CUDA 13.1 libraries (cuBLAS, cuDNN, ...; see LIBTORCH-JAVA.md §4). A CUDA request on a host
 * without them fails at once with a clear message, never later with an obscure kernel error.
 *
 * <p>The CUDA path cannot be exercised on the machines this project is built on: its logic (device
 * placement of weights, inputs, RoPE tables and guidance offsets; no host syncs in the forward) is exercised
 * on CPU by the same code.
 */
public record DeviceSpec(boolean cuda, int index) {
    public static final DeviceSpec CPU = new DeviceSpec(false, -1);

    public DeviceSpec {
        if (!cuda && index != -1) throw new IllegalArgumentException("a CPU device has no index");
        if (cuda && index < 0) throw new IllegalArgumentException("CUDA device index must be >= 0, got " + index);
    }

    public static DeviceSpec parse(String text) {
        String s = text == null ? "" : text.trim().toLowerCase(Locale.ROOT);
        if (s.equals("cpu")) return CPU;
        if (s.equals("cuda") || s.equals("gpu")) return new DeviceSpec(true, 0);
        if (s.startsWith("cuda:")) {
            try {
                return new DeviceSpec(true, Integer.parseInt(s.substring(5)));
            } catch (NumberFormatException e) {
                // fall through to the error below
            }
        }
        throw new IllegalArgumentException("device '" + text + "': expected cpu, cuda or cuda:N");
    }

    /** Fails with an explanation when this device cannot be used in this process. */
    public DeviceSpec requireAvailable() {
        if (!cuda) return this;
        Torch.init();
        boolean available = torch.cuda_is_available();
        int count = available ? torch.cuda_device_count() : 0;
        if (!available || index >= count) {
            throw new IllegalArgumentException("device " + this + " requested, but " + (available
                    ? "this host has " + count + " CUDA device(s)"
                    : "CUDA is not available in this process (CPU-only natives, or the host lacks libcuda / cuBLAS 13 / "
                    + "cuSPARSE 12 / cuDNN 9 / NCCL 2; build with -Djavacpp.platform.extension=-gpu)"));
        }
        return this;
    }

    /** A new libtorch Device handle (caller-owned; inside a scope it dies with the scope). */
    public Device torchDevice() {
        return new Device(toString());
    }

    public static DeviceSpec of(org.bytedeco.pytorch.Tensor t) {
        try (Device d = t.device()) {
            return d.is_cuda() ? new DeviceSpec(true, d.index()) : CPU;
        }
    }

    @Override
    public String toString() {
        return cuda ? "cuda:" + index : "cpu";
    }
}
