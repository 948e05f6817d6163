package io.mmdit4j.cli;

/**
 * How much the command line says: {@code --quiet} (errors and the files written), the default (its own progress and
 * summaries, the engine's warnings) or {@code --verbose} (also the engine's log: loads, phase timings, at debug level).
 * The engine logs through SLF4J; the command line's binding is slf4j-simple, configured here before the first logger
 * exists ({@code simplelogger.properties} holds the format).
 */
enum Verbosity {
    QUIET("error"), NORMAL("warn"), VERBOSE("debug");

    private final String level;

    Verbosity(String level) {
        this.level = level;
    }

    private static volatile Verbosity current = NORMAL;

    static Verbosity current() {
        return current;
    }

    static boolean quiet() {
        return current == QUIET;
    }

    private static final String LEVEL_KEY = "org.slf4j.simpleLogger.defaultLogLevel";
    /** A level given with {@code -D} when the JVM started: it wins over the flags. */
    private static final String GIVEN = System.getProperty(LEVEL_KEY);

    /** Sets the level; slf4j-simple reads it when the first logger is made, so before any engine class logs. */
    static void set(Verbosity v) {
        current = v;
        if (GIVEN == null) System.setProperty(LEVEL_KEY, v.level);
    }

    /** A line of the command's own progress or summary on standard error, unless quiet. */
    static void note(String format, Object... args) {
        if (!quiet()) System.err.printf(java.util.Locale.ROOT, format + "%n", args);
    }
}
