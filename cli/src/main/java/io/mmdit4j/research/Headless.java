package io.mmdit4j.research;

/** java.awt drawing without a display: sets {@code java.awt.headless=true} unless the JVM was started with a value. */
final class Headless {
    private Headless() {}

    static void ensure() {
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
    }
}
