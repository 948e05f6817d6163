package io.mmdit4j.golden;

/** One line of a golden check: PASS, FAIL or SKIP for one output of one case (or the whole case). */
public record CaseResult(Status status, String caseName, String output, String detail) {
    public enum Status { PASS, FAIL, SKIP }

    public static CaseResult of(String caseName, Comparison c) {
        return new CaseResult(c.pass() ? Status.PASS : Status.FAIL, caseName, c.output(), c.summary());
    }

    public static CaseResult skip(String caseName, String why) {
        return new CaseResult(Status.SKIP, caseName, "-", why);
    }

    public static CaseResult error(String caseName, String output, String why) {
        return new CaseResult(Status.FAIL, caseName, output, "error: " + why);
    }

    /** A case that threw: the exception's first line (the whole trace on stderr when MMDIT_DEBUG is set). */
    public static CaseResult failed(String caseName, String output, Throwable e) {
        if (System.getenv("MMDIT_DEBUG") != null) e.printStackTrace();
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        int nl = m.indexOf('\n');
        return error(caseName, output, nl < 0 ? m : m.substring(0, nl));
    }

    public String line() {
        return status + " " + caseName + " " + output + ": " + detail;
    }
}
