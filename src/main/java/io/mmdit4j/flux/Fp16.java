package io.mmdit4j.flux;

import io.mmdit4j.runtime.Native;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;

/** The fp16 range that FLUX clips its streams to when computing in half precision. */
final class Fp16 {
    private Fp16() {}

    static final ScalarOptional MIN = Native.keep(new ScalarOptional(Native.keep(new Scalar(-65504.0))));
    static final ScalarOptional MAX = Native.keep(new ScalarOptional(Native.keep(new Scalar(65504.0))));
}
