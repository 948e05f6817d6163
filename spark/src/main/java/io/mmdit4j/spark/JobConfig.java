package io.mmdit4j.spark;

import java.io.Serializable;

/**
 * What every task needs to know: the model and how to load it, where outputs go, how rows are batched. Sent with the
 * tasks (serialised); the executors load the model themselves.
 *
 * @param model       a model name, a diffusers folder or a checkpoint, as {@code generate --model} takes it (a path
 *                    must be readable on every executor)
 * @param dtype       fp32 / bf16, or null for the model's
 * @param device      {@code auto} (the GPU Spark assigned to the task, else the CPU), {@code cpu}, {@code cuda} or
 *                    {@code cuda:N}
 * @param out         the output folder, absolute (on a cluster: a file system every executor and the driver share)
 * @param batch       rows of one shape generated together (at most)
 * @param failFast    a failed row fails its task (and so the job)
 * @param run         this run's id, recorded with the rows it makes
 * @param threads     libtorch threads per executor JVM, or 0 for libtorch's default
 */
public record JobConfig(String model, String dtype, String device, boolean memoryMapped, boolean checkMemory, String out, int batch,
                        boolean failFast, String run, int threads) implements Serializable {
    public JobConfig {
        if (batch < 1 || batch > 64) throw new IllegalArgumentException("--batch must be in 1..64, got " + batch);
        if (threads < 0) throw new IllegalArgumentException("--threads must be >= 0, got " + threads);
    }

    /** What, besides a row's own columns, decides its image: part of a hashed row id. */
    public String identityKey() {
        return "model=" + model + ";dtype=" + (dtype == null ? "" : dtype);
    }
}
