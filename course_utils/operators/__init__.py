"""What a scanner measures, as a linear operator ``A`` (lessons 01, 02 and 05).

``linear_operator``     the interface: ``A(x)``, ``A.T(y)``, ``A.norm()``, adjoint test
``geometry``            ``ParallelBeam`` and ``FanBeam``: where the rays go
``sparse``              operators stored as a sparse matrix, their autograd bridge and cache
``radon``               ``RadonTransform``: Joseph's projector, the course's ``A``
``astra``               the same projector computed by the ASTRA toolbox
``finite_differences``  ``Gradient``: the image gradient ``D`` of total variation
"""
