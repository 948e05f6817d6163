package io.mmdit4j.golden;

import java.util.List;

/** Runs the golden cases of one {@code kind}. */
public interface CaseRunner {
    List<CaseResult> run(GoldenCase c);
}
