"""Installs the ConST-CL project (TensorFlow Model Garden style)."""

import setuptools

setuptools.setup(
    name='official-projects-const-cl',
    version='0.1.0',
    description=('Contextualized Spatio-Temporal Contrastive Learning '
                 '(ConST-CL, CVPR 2022) in TensorFlow Model Garden style.'),
    packages=setuptools.find_packages(include=['official_projects_const_cl',
                                               'official_projects_const_cl.*']),
    py_modules=['train'],
    package_data={'official_projects_const_cl': ['configs/yaml/*.yaml']},
    python_requires='>=3.10,<3.13',
    install_requires=[
        # tf-models-official brings orbit, tf-keras, gin-config and
        # tensorflow-datasets. tensorflow-addons is deliberately absent: its
        # last release needs TensorFlow < 2.16 and fails to import next to 2.20.
        'tensorflow>=2.20,<2.21',
        'tf-models-official>=2.20,<2.21',
        'numpy>=1.26,<3',
        'scikit-image>=0.22,<0.27',
        # Video decoding for the converters (ships FFmpeg inside its wheel).
        'av>=12,<20',
        # Precision / success plots of the tracking evaluation.
        'matplotlib>=3.8',
    ],
    extras_require={
        # The GOT-10k toolkit: our OTB metrics are tested against its numbers
        # (it imports shapely and, undeclared, six).
        'test': ['pytest>=7', 'pytest-xdist>=3.5', 'got10k==0.1.3', 'shapely>=2',
                 'six'],
    },
    entry_points={
        'console_scripts': [
            # `main` (not `cli`): exit status 0 / 1 / 2 (errors.py).
            'const-cl-demo-data=official_projects_const_cl.tools.demo_data:main',
            'const-cl-convert-videos='
            'official_projects_const_cl.tools.convert_videos:main',
            'const-cl-convert-ava='
            'official_projects_const_cl.tools.convert_ava:main',
            'const-cl-validate-records='
            'official_projects_const_cl.tools.validate_records:main',
            'const-cl-export-saved-model='
            'official_projects_const_cl.tools.export_saved_model:main',
            'const-cl-extract-features='
            'official_projects_const_cl.tools.extract_features:main',
            'const-cl-visualize-attention='
            'official_projects_const_cl.tools.visualize_attention:main',
        ],
    },
)
