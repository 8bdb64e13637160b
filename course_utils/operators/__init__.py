"""What a scanner measures, as a linear operator ``A`` (lessons 01, 02 and 05).

``linear_operator``     the interface: ``A(x)``, ``A.T(y)``, ``A.norm()``, adjoint test,
                        ``A.check_domain(x)`` / ``A.check_range(y)``
``geometry``            ``ParallelBeam``, ``FanBeam`` and ``ConeBeam``: where the rays go
``sparse``              ``SparseMatrixOperator``: operators stored as a sparse matrix,
                        their autograd bridge, and the one matrix cache
                        (``clear_cache()``, ``cache_info()``)
``radon``               ``RadonTransform``: Joseph's projector, the course's ``A``
``astra``               the same projector computed by the ASTRA toolbox
``cone_beam``           ``ConeBeamTransform``: Joseph's projector for 3D cone-beam CT
                        (lesson 13)
``finite_differences``  ``Gradient``: the image gradient ``D`` of total variation, and
                        ``image_gradient``, ``image_divergence``, ``total_variation``
"""
