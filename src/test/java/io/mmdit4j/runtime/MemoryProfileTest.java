package io.mmdit4j.runtime;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@link MemoryProfile}: reports name the allocator policy a run had, including hand-set variables. */
class MemoryProfileTest {

    @Test
    void namesTheProfile() {
        assertEquals("fast", MemoryProfile.name(Map.of()));
        assertEquals("lean", MemoryProfile.name(Map.of("MMDIT_MEMORY", "lean",
                "GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=2097152", "THP_MEM_ALLOC_ENABLE", "1")));
        assertEquals("custom", MemoryProfile.name(Map.of("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=4194304")));
        assertEquals("custom", MemoryProfile.name(Map.of("THP_MEM_ALLOC_ENABLE", "1")));
        assertEquals("fast", MemoryProfile.name(Map.of("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")));
    }
}
