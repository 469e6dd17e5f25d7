"""RIG, the method itself: the DDIM schedule (`schedule`), DDIM inversion (`inversion`), the texture-preserving
attention processor (`tac`), the batched two-branch pipeline (`pipeline`, diffusers' calling conventions) and the
float32 CPU convolution path (`cpu_conv`). Loading models and their DKI artifacts is `r2r.models`' job, not this one.
"""
