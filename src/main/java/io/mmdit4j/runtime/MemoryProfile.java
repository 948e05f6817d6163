package io.mmdit4j.runtime;

import java.util.Map;

/**
 * The native-allocator settings this process started with, for reports ({@code bench}, {@code forward --single}).
 * They can only be chosen before the JVM starts, so the {@code mmdit} launcher sets them from {@code MMDIT_MEMORY}:
 * <ul>
 *   <li>{@code fast} (default): glibc's own policy. Freed tensors stay in malloc's arenas and are reused warm, but the
 *       arenas fragment, so RSS runs some tens of MB above the live tensors.</li>
 *   <li>{@code lean}: every allocation of 2 MB or more is mapped fresh ({@code glibc.malloc.mmap_threshold}) in
 *       transparent huge pages (libtorch's {@code THP_MEM_ALLOC_ENABLE}) and returned to the OS when freed, so RSS
 *       tracks the live tensors; each forward pays for zeroing fresh pages (measured in benchmarks/README.md).</li>
 * </ul>
 */
public final class MemoryProfile {
    private MemoryProfile() {}

    /** {@code lean} or {@code fast} as the launcher set it, or {@code custom} when the allocator variables were set by hand. */
    public static String name() {
        return name(System.getenv());
    }

    static String name(Map<String, String> env) {
        String declared = env.get("MMDIT_MEMORY");
        boolean tuned = env.getOrDefault("GLIBC_TUNABLES", "").contains("glibc.malloc.mmap_threshold")
                || "1".equals(env.get("THP_MEM_ALLOC_ENABLE"));
        if (declared != null && !declared.isBlank()) return declared;
        return tuned ? "custom" : "fast";
    }

    /** One line: the profile and the allocator variables behind it. */
    public static String describe() {
        Map<String, String> env = System.getenv();
        return name(env) + " (GLIBC_TUNABLES=" + env.getOrDefault("GLIBC_TUNABLES", "") + ", THP_MEM_ALLOC_ENABLE="
                + env.getOrDefault("THP_MEM_ALLOC_ENABLE", "") + ")";
    }
}
