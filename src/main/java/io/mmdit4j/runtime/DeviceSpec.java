package io.mmdit4j.runtime;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;

import java.util.Locale;

/**
 * Where a model runs: {@code cpu}, {@code cuda[:N]}, or {@code meta} (shapes only, no memory: dry runs of
 * real-size models). CUDA needs the {@code linux-x86_64-gpu} natives ({@code mvn -Pcuda}) and a host with the
 * CUDA 13.1 libraries (cuBLAS, cuDNN, ...; see LIBTORCH-JAVA.md §4). A CUDA request on a host without them
 * fails at once with a clear message, never later with an obscure kernel error.
 *
 * <p>The CUDA path cannot be exercised on the machines this project is built on. Its logic (placing weights,
 * inputs, RoPE tables and guidance offsets on the model's device; no host syncs in the forward) is the same
 * code that the CPU and meta devices run.
 */
public record DeviceSpec(Kind kind, int index) {
    public enum Kind { CPU, CUDA, META }

    public static final DeviceSpec CPU = new DeviceSpec(Kind.CPU, -1);
    public static final DeviceSpec META = new DeviceSpec(Kind.META, -1);

    public DeviceSpec {
        if (kind != Kind.CUDA && index != -1) throw new IllegalArgumentException("a " + kind + " device has no index");
        if (kind == Kind.CUDA && index < 0) throw new IllegalArgumentException("CUDA device index must be >= 0, got " + index);
    }

    public static DeviceSpec cuda(int index) {
        return new DeviceSpec(Kind.CUDA, index);
    }

    public static DeviceSpec parse(String text) {
        String s = text == null ? "" : text.trim().toLowerCase(Locale.ROOT);
        if (s.equals("cpu")) return CPU;
        if (s.equals("meta")) return META;
        if (s.equals("cuda") || s.equals("gpu")) return cuda(0);
        if (s.startsWith("cuda:")) {
            try {
                return cuda(Integer.parseInt(s.substring(5)));
            } catch (NumberFormatException e) {
                // fall through to the error below
            }
        }
        throw new IllegalArgumentException("device '" + text + "': expected cpu, cuda, cuda:N or meta");
    }

    public boolean isCpu() { return kind == Kind.CPU; }
    public boolean isCuda() { return kind == Kind.CUDA; }
    public boolean isMeta() { return kind == Kind.META; }

    /** Fails with an explanation when this device cannot be used in this process. */
    public DeviceSpec requireAvailable() {
        if (!isCuda()) return this;
        Torch.init();
        boolean available = torch.cuda_is_available();
        int count = available ? torch.cuda_device_count() : 0;
        if (!available || index >= count) {
            throw new IllegalArgumentException("device " + this + " requested, but " + (available
                    ? "this host has " + count + " CUDA device(s)"
                    : "CUDA is not available in this process (CPU-only natives, or the host lacks libcuda / cuBLAS 13 / "
                    + "cuSPARSE 12 / cuDNN 9 / NCCL 2; build with mvn -Pcuda)"));
        }
        return this;
    }

    /** A new libtorch Device handle (caller-owned; inside a scope it dies with the scope). */
    public Device torchDevice() {
        return new Device(toString());
    }

    public static DeviceSpec of(org.bytedeco.pytorch.Tensor t) {
        if (t.is_meta()) return META;
        try (Device d = t.device()) {
            return d.is_cuda() ? cuda(d.index()) : CPU;
        }
    }

    @Override
    public String toString() {
        return switch (kind) {
            case CPU -> "cpu";
            case META -> "meta";
            case CUDA -> "cuda:" + index;
        };
    }
}
