package io.mmdit4j.nn;

/** Closing groups of modules. */
public final class Modules {
    private Modules() {}

    /** Adds {@code module} to {@code built} (closed together if loading fails half-way) and returns it. */
    public static <T extends AutoCloseable> T track(java.util.List<AutoCloseable> built, T module) {
        built.add(module);
        return module;
    }

    /** Closes a module that may be null (optional parts such as a guidance embedder). */
    public static void closeQuietly(AutoCloseable c) {
        if (c == null) return;
        try {
            c.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing " + c.getClass().getSimpleName() + " failed", e);
        }
    }

    public static void closeAll(Iterable<? extends AutoCloseable> modules) {
        for (AutoCloseable c : modules) closeQuietly(c);
    }

    /** Closes every module, in order (a pipeline's text encoders, transformer and VAE). */
    public static void closeAll(AutoCloseable... modules) {
        for (AutoCloseable c : modules) closeQuietly(c);
    }
}
